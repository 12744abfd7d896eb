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
#include <algorithm>
#include <vector>

// Columns go in blocks of BLOCK so that the block's g and s stay in registers or L1 while the
// class's input rows stream past.
constexpr int64_t BLOCK = 64;

// Row o of the weight and of class c's multipliers, from the class's rows first..last.
template <typename T>
inline void update_row(T* w_row, T& bias, T* mu_row, T& mu_bias, const T* inputs,
                       const T* inputs_sq, const T* grads, int64_t first, int64_t last,
                       int64_t o, int64_t out, int64_t in, T lr, T growth, bool per_sample) {
  T g_bias = 0, s_bias = 0;
  for (int64_t r = first; r < last; ++r) {
    const T dr = grads[r * out + o];
    g_bias += dr;
    s_bias += dr * dr;
  }
  if (last - first == 1 && per_sample) {
    // One sample of the class (the common case with many classes): g = d a, s = d^2 a^2,
    // applied directly without accumulators.
    const T step = lr * grads[first * out + o], grow = growth * s_bias;
    const T* a = inputs + first * in;
    const T* a_sq = inputs_sq + first * in;
    for (int64_t j = 0; j < in; ++j) {
      const T m = mu_row[j];
      w_row[j] -= step * m * a[j];
      mu_row[j] = m + grow * a_sq[j];
    }
    bias -= lr * mu_bias * g_bias;
    mu_bias += growth * s_bias;
    return;
  }
  for (int64_t i0 = 0; i0 < in; i0 += BLOCK) {
    const int64_t n = std::min(BLOCK, in - i0);
    T g[BLOCK] = {}, s[BLOCK] = {};
    for (int64_t r = first; r < last; ++r) {
      const T dr = grads[r * out + o], dr_sq = dr * dr;
      const T* a = inputs + r * in + i0;
      const T* a_sq = inputs_sq + r * in + i0;
      for (int64_t j = 0; j < n; ++j) {
        g[j] += dr * a[j];
        s[j] += dr_sq * a_sq[j];
      }
    }
    if (!per_sample)
      for (int64_t j = 0; j < n; ++j) s[j] = g[j] * g[j];
    T* w = w_row + i0;
    T* mu = mu_row + i0;
    for (int64_t j = 0; j < n; ++j) {
      const T m = mu[j];
      w[j] -= lr * m * g[j];
      mu[j] = m + growth * s[j];
    }
  }
  if (!per_sample) s_bias = g_bias * g_bias;
  bias -= lr * mu_bias * g_bias;
  mu_bias += growth * s_bias;
}

template <typename T>
void update(T* weight, T* bias, T* mu_w, T* mu_b, const T* inputs, const T* inputs_sq,
            const T* grads, const int64_t* offsets, int64_t n_classes, int64_t out,
            int64_t in, double lr_, double growth_, bool per_sample) {
  const T lr = static_cast<T>(lr_), growth = static_cast<T>(growth_);
  // Rows of the weight are taken in tiles small enough to stay in cache (about 128 KiB) while
  // every present class streams its multipliers for that tile past them: each multiplier is
  // read and written once, each weight tile once per class from cache.
  const int64_t tile = std::max<int64_t>(1, 32768 / std::max<int64_t>(in, 1));
  at::parallel_for(0, out, tile, [&](int64_t begin, int64_t end) {
    for (int64_t o0 = begin; o0 < end; o0 += tile) {
      const int64_t o1 = std::min(end, o0 + tile);
      for (int64_t c = 0; c < n_classes; ++c) {
        const int64_t first = offsets[c], last = offsets[c + 1];
        if (first == last) continue;  // class absent from the batch: nothing to touch
        for (int64_t o = o0; o < o1; ++o)
          update_row(weight + o * in, bias[o], mu_w + (c * out + o) * in, mu_b[c * out + o],
                     inputs, inputs_sq, grads, first, last, o, out, in, lr, growth, per_sample);
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
