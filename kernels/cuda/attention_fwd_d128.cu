// Instantiates the tensor-core attention forward for head_dim 128 (bf16/f16, causal or not); one
// translation unit per head dim so the heavy variants compile in parallel.
#include "kernels/cuda/attention_forward.cuh"

namespace tessera::kernels::attention {

template void launch_forward<__nv_bfloat16, 128, false>(const AttentionParams&, cudaStream_t);
template void launch_forward<__nv_bfloat16, 128, true>(const AttentionParams&, cudaStream_t);
template void launch_forward<__half, 128, false>(const AttentionParams&, cudaStream_t);
template void launch_forward<__half, 128, true>(const AttentionParams&, cudaStream_t);

}  // namespace tessera::kernels::attention
