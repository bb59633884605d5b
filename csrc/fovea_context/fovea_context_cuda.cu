// CUDA kernels of the fused first stage: one launch per op, each block a tile of one frame
// (fovea_context.h: TileGrid, load_tile, store_tile, shared with the C++ test's CPU emulation).
//
// Per tile: 16-byte loads of the tile's input rows into shared memory (consecutive threads take
// consecutive chunks, so a warp reads 512 contiguous bytes), one barrier, then the crop (fovea or
// full frame) and the context written with consecutive threads on consecutive output addresses,
// in channels_last_3d (physical B, T, h, w, 3) and in contiguous NCTHW alike. Each input byte
// comes from DRAM once (the fovea is inside the context's rows) and each output is written once;
// at 178x178 a bf16 fovea + context writes as many bytes as it reads.
//
// Torch-free: the wrapper (fovea_context_torch_cuda.cpp) passes raw pointers, strides and the
// current stream.
#include <climits>

#include "fovea_context/fovea_context.h"

namespace sportsfusion {
namespace {

// 6 resident blocks per SM: ptxas then fits the kernel in 40 registers without spilling (62-72
// unbounded, i.e. 3 blocks; 8 blocks would mean 32 registers and spills). To tune on the H100.
constexpr int kBlocksPerSm = 6;

template <typename T>
__global__ void __launch_bounds__(kLanes* kWarps, kBlocksPerSm)
    fused_kernel(const FusedJob<T> job) {
  extern __shared__ __align__(16) uint8_t smem[];
  const int thread = threadIdx.y * kLanes + threadIdx.x;
  // Normally one tile per block; the loop covers grids capped at INT_MAX blocks.
  for (int64_t index = blockIdx.x; index < job.grid.tiles(); index += gridDim.x) {
    const Tile tile = tile_at(job.grid, index);
    load_tile(job, tile, smem, thread, kLanes * kWarps);
    __syncthreads();
    store_tile(job, tile, smem, threadIdx.x, kLanes, threadIdx.y, kWarps);
    __syncthreads();  // the next tile overwrites shared memory
  }
}

template <typename T>
cudaError_t launch(const FusedJob<T>& job, cudaStream_t stream) {
  const int64_t tiles = job.grid.tiles();
  if (tiles == 0) return cudaSuccess;  // empty output: a zero-block launch would be an error
  const unsigned blocks = unsigned(tiles < INT_MAX ? tiles : INT_MAX);
  // At most kTileBytes + one pitch (< 9 KB): under the 48 KB that needs no opt-in.
  const size_t shared = size_t(job.grid.shared_bytes());
  fused_kernel<T><<<blocks, dim3(kLanes, kWarps), shared, stream>>>(job);
  return cudaGetLastError();
}

}  // namespace

template <typename T>
cudaError_t fovea_context_cuda(const ClipView& clips, const OutputView<T>& fovea,
                               const OutputView<T>& context, cudaStream_t stream) {
  return launch(fovea_context_job(clips, fovea, context), stream);
}

template <typename T>
cudaError_t clip_to_input_cuda(const ClipView& clips, const OutputView<T>& out,
                               cudaStream_t stream) {
  return launch(clip_to_input_job(clips, out), stream);
}

#define SPORTSFUSION_INSTANTIATE(T)                                                          \
  template cudaError_t fovea_context_cuda<T>(const ClipView&, const OutputView<T>&,          \
                                             const OutputView<T>&, cudaStream_t);            \
  template cudaError_t clip_to_input_cuda<T>(const ClipView&, const OutputView<T>&,          \
                                             cudaStream_t);
SPORTSFUSION_INSTANTIATE(float)
SPORTSFUSION_INSTANTIATE(bf16)
SPORTSFUSION_INSTANTIATE(fp16)
#undef SPORTSFUSION_INSTANTIATE

}  // namespace sportsfusion
