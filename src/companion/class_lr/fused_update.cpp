// Fused class-lr update of one linear layer: a single pass over the multipliers.
//
// Rows of `inputs` (B, in) and `grads` (B, out) are sorted by class; class c owns rows
// offsets[c] .. offsets[c+1]. For every class c present and every output unit o (in parallel),
//   g[i] = sum_r grads[r,o] * inputs[r,i]                        (row o of G_c)
//   s[i] = sum_r grads[r,o]^2 * inputs[r,i]^2   (per sample)  or g[i]^2 (class gradient)
//   weight[o,i] -= lr * mu[c,o,i] * g[i];   mu[c,o,i] += growth * s[i]
// so each multiplier is read once and written once, and G_c never exists as a tensor.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>

// Columns go in blocks of BLOCK so that the block's g and s stay in registers or L1 while the
// class's input rows stream past.
constexpr int64_t BLOCK = 64;

// Row o of the weight and of class c's multipliers, from the class's rows first..last.
template <typename T>
inline void update_row(T* __restrict__ w_row, T& bias, T* __restrict__ mu_row, T& mu_bias,
                       const T* __restrict__ inputs, const T* __restrict__ grads,
                       int64_t first, int64_t last, int64_t o, int64_t out, int64_t in, T lr,
                       T growth, bool per_sample) {
  T g_bias = 0, s_bias = 0;
  for (int64_t r = first; r < last; ++r) {
    const T dr = grads[r * out + o];
    g_bias += dr;
    s_bias += dr * dr;
  }
  if (!per_sample) s_bias = g_bias * g_bias;
  if (last - first == 1 && per_sample) {
    // One sample of the class (the common case with many classes): g = d a, s = d^2 a^2,
    // applied directly, without accumulators.
    const T step = lr * g_bias, grow = growth * s_bias;
    const T* __restrict__ a = inputs + first * in;
    for (int64_t j = 0; j < in; ++j) {
      const T m = mu_row[j];
      w_row[j] -= step * m * a[j];
      mu_row[j] = m + grow * a[j] * a[j];
    }
  } else {
    for (int64_t i0 = 0; i0 < in; i0 += BLOCK) {
      const int64_t n = std::min(BLOCK, in - i0);
      T g[BLOCK] = {}, s[BLOCK] = {};
      for (int64_t r = first; r < last; ++r) {
        const T dr = grads[r * out + o], dr_sq = dr * dr;
        const T* __restrict__ a = inputs + r * in + i0;
        for (int64_t j = 0; j < n; ++j) {
          g[j] += dr * a[j];
          s[j] += dr_sq * a[j] * a[j];
        }
      }
      if (!per_sample)
        for (int64_t j = 0; j < n; ++j) s[j] = g[j] * g[j];
      T* __restrict__ w = w_row + i0;
      T* __restrict__ mu = mu_row + i0;
      for (int64_t j = 0; j < n; ++j) {
        const T m = mu[j];
        w[j] -= lr * m * g[j];
        mu[j] = m + growth * s[j];
      }
    }
  }
  bias -= lr * mu_bias * g_bias;
  mu_bias += growth * s_bias;
}

template <typename T>
void update(T* weight, T* bias, T* mu_w, T* mu_b, const T* inputs, const T* grads,
            const int64_t* offsets, int64_t n_classes, int64_t out, int64_t in, double lr_,
            double growth_, bool per_sample) {
  const T lr = static_cast<T>(lr_), growth = static_cast<T>(growth_);
  // Class-major: the multipliers of one class are one contiguous (out, in) slab, streamed once
  // from start to end (blocking the weight rows into cache tiles measured no faster).
  for (int64_t c = 0; c < n_classes; ++c) {
    const int64_t first = offsets[c], last = offsets[c + 1];
    if (first == last) continue;  // class absent from the batch: nothing to touch
    at::parallel_for(0, out, 16, [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o)
        update_row(weight + o * in, bias[o], mu_w + (c * out + o) * in, mu_b[c * out + o],
                   inputs, grads, first, last, o, out, in, lr, growth, per_sample);
    });
  }
}

void fused_class_lr_update(torch::Tensor weight, torch::Tensor bias, torch::Tensor mu_w,
                           torch::Tensor mu_b, torch::Tensor inputs, torch::Tensor grads,
                           torch::Tensor offsets, double lr, double growth, bool per_sample) {
  TORCH_CHECK(weight.is_contiguous() && bias.is_contiguous() && mu_w.is_contiguous() &&
                  mu_b.is_contiguous(),
              "weight, bias and multipliers must be contiguous");
  TORCH_CHECK(offsets.scalar_type() == torch::kInt64 && offsets.size(0) == mu_w.size(0) + 1,
              "offsets must be int64 with k + 1 entries");
  inputs = inputs.contiguous();
  grads = grads.contiguous();
  const int64_t out = weight.size(0), in = weight.size(1), k = mu_w.size(0);
  AT_DISPATCH_FLOATING_TYPES(weight.scalar_type(), "fused_class_lr_update", [&] {
    update<scalar_t>(weight.data_ptr<scalar_t>(), bias.data_ptr<scalar_t>(),
                     mu_w.data_ptr<scalar_t>(), mu_b.data_ptr<scalar_t>(),
                     inputs.data_ptr<scalar_t>(), grads.data_ptr<scalar_t>(),
                     offsets.data_ptr<int64_t>(), k, out, in, lr, growth, per_sample);
  });
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("fused_class_lr_update", &fused_class_lr_update, "fused class-lr layer update");
}
