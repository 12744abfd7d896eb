// Fused class-lr update of one linear layer: a single pass over the multipliers.
//
// Rows of `inputs` (B, in) and `grads` (B, out) are sorted by class; class c owns rows
// offsets[c] .. offsets[c+1]. For every output unit o (in parallel) and every class c present,
//   g[i] = sum_r grads[r,o] * inputs[r,i]                       (G_c row o)
//   s[i] = sum_r grads[r,o]^2 * inputs_sq[r,i]   (per-sample)  or g[i]^2 (class gradient)
//   weight[o,i] -= lr * mu[c,o,i] * g[i];  mu[c,o,i] += growth * s[i]
// so each multiplier is read once and written once, and G_c never exists as a tensor.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <vector>

template <typename T>
void update(T* weight, T* bias, T* mu_w, T* mu_b, const T* inputs, const T* inputs_sq,
            const T* grads, const int64_t* offsets, int64_t n_classes, int64_t out,
            int64_t in, double lr_, double growth_, bool per_sample) {
  const T lr = static_cast<T>(lr_), growth = static_cast<T>(growth_);
  at::parallel_for(0, out, 8, [&](int64_t begin, int64_t end) {
    std::vector<T> g(in), s(in);
    for (int64_t o = begin; o < end; ++o) {
      T* w_row = weight + o * in;
      for (int64_t c = 0; c < n_classes; ++c) {
        const int64_t first = offsets[c], last = offsets[c + 1];
        if (first == last) continue;  // class absent from the batch: nothing to touch
        std::fill(g.begin(), g.end(), T(0));
        std::fill(s.begin(), s.end(), T(0));
        T g_bias = 0, s_bias = 0;
        for (int64_t r = first; r < last; ++r) {
          const T d = grads[r * out + o], d_sq = d * d;
          const T* a = inputs + r * in;
          const T* a_sq = inputs_sq + r * in;
          for (int64_t i = 0; i < in; ++i) g[i] += d * a[i];
          if (per_sample)
            for (int64_t i = 0; i < in; ++i) s[i] += d_sq * a_sq[i];
          g_bias += d;
          s_bias += d_sq;
        }
        T* mu_row = mu_w + (c * out + o) * in;
        if (per_sample) {
          for (int64_t i = 0; i < in; ++i) {
            const T m = mu_row[i];
            w_row[i] -= lr * m * g[i];
            mu_row[i] = m + growth * s[i];
          }
        } else {
          for (int64_t i = 0; i < in; ++i) {
            const T m = mu_row[i];
            w_row[i] -= lr * m * g[i];
            mu_row[i] = m + growth * g[i] * g[i];
          }
          s_bias = g_bias * g_bias;
        }
        T& m_bias = mu_b[c * out + o];
        bias[o] -= lr * m_bias * g_bias;
        m_bias += growth * s_bias;
      }
    }
  });
}

void fused_class_lr_update(torch::Tensor weight, torch::Tensor bias, torch::Tensor mu_w,
                           torch::Tensor mu_b, torch::Tensor inputs, torch::Tensor inputs_sq,
                           torch::Tensor grads, torch::Tensor offsets, double lr,
                           double growth, bool per_sample) {
  TORCH_CHECK(weight.is_contiguous() && mu_w.is_contiguous() && mu_b.is_contiguous(),
              "weight and multipliers must be contiguous");
  TORCH_CHECK(offsets.scalar_type() == torch::kInt64, "offsets must be int64");
  inputs = inputs.contiguous();
  inputs_sq = inputs_sq.contiguous();
  grads = grads.contiguous();
  const int64_t out = weight.size(0), in = weight.size(1), k = mu_w.size(0);
  AT_DISPATCH_FLOATING_TYPES(weight.scalar_type(), "fused_class_lr_update", [&] {
    update<scalar_t>(weight.data_ptr<scalar_t>(), bias.data_ptr<scalar_t>(),
                     mu_w.data_ptr<scalar_t>(), mu_b.data_ptr<scalar_t>(),
                     inputs.data_ptr<scalar_t>(), inputs_sq.data_ptr<scalar_t>(),
                     grads.data_ptr<scalar_t>(), offsets.data_ptr<int64_t>(), k, out, in, lr,
                     growth, per_sample);
  });
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("fused_class_lr_update", &fused_class_lr_update, "fused class-lr layer update");
}
