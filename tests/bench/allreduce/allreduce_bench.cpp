// All-reduce benchmark: Tessera's bucketed gradient reduction (dist::Reducer over a list of
// gradient tensors) and a single Communicator::all_reduce, against the raw library call on the
// same ranks in the same run — MPI_Allreduce for host buffers (--device cpu), ncclAllReduce on
// a communicator of our own for device buffers (--device cuda).
//
//   mpirun -np 2 allreduce_bench --device cpu --max-mib 256
//   mpirun -np 1 allreduce_bench --device cuda --max-mib 1024
//
// Sizes S = 1, 4, 16, ... MiB of f32 up to --max-mib. The Reducer gets 16 gradient tensors of
// S/16 bytes with the default buckets (first 1 MiB, then 25 MiB) and f32 wire, and runs what
// finish() does after a backward pass: pack, all-reduce every bucket, average into the
// gradients. Each method: one warm-up, then 2 to 50 calls (fewer for large S); the time is the
// slowest rank's mean. Bus bandwidth = 2 (n - 1) / n * S / time (nccl-tests' definition; 0 for
// one rank, where algorithm bandwidth S / time is the useful number). The raw call runs twice: on
// the whole buffer, and once per bucket of the Reducer over the same ranges (the cost of
// bucketing itself, without our layers). Rank 0 prints a markdown table; ratios are raw time /
// our time (above 1: ours faster).
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // the C API only (the C++ bindings are not linked)
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "framework/core/device.h"
#include "framework/core/tensor.h"
#include "framework/dist/ddp.h"
#include "framework/dist/process_group.h"

#if defined(TESSERA_WITH_CUDA)
#include <cuda_runtime.h>
#endif
#if defined(TESSERA_WITH_NCCL)
#include <nccl.h>
#endif

namespace {

using namespace tessera;
using Clock = std::chrono::steady_clock;

void device_sync(const Device& device) {
#if defined(TESSERA_WITH_CUDA)
  if (device.is_cuda()) cudaDeviceSynchronize();
#endif
}

// Mean seconds per call over `iters` calls after one warm-up, the slowest rank's.
double time_calls(int iters, const Device& device, const std::function<void()>& call) {
  call();
  device_sync(device);
  MPI_Barrier(MPI_COMM_WORLD);
  const auto start = Clock::now();
  for (int i = 0; i < iters; ++i) call();
  device_sync(device);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count() / iters;
  MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return seconds;
}

#if defined(TESSERA_WITH_NCCL)
#define BENCH_NCCL_CHECK(call)                                                              \
  do {                                                                                      \
    ncclResult_t r_ = (call);                                                               \
    if (r_ != ncclSuccess) {                                                                \
      std::fprintf(stderr, "allreduce_bench: %s: %s\n", #call, ncclGetErrorString(r_));     \
      MPI_Abort(MPI_COMM_WORLD, 1);                                                         \
    }                                                                                       \
  } while (0)
#endif

}  // namespace

int main(int argc, char** argv) {
  std::string device_name = "cpu";
  int max_mib = 256;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--device")) device_name = argv[i + 1];
    else if (!std::strcmp(argv[i], "--max-mib")) max_mib = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: allreduce_bench [--device cpu|cuda] [--max-mib N]\n");
      return 2;
    }
  }
  try {
    auto& group = dist::ProcessGroup::init({.timeout_s = 600});
    const Device device = group.select_device(Device::parse(device_name));
    dist::Communicator& comm = group.communicator(device);
    const int world = group.world_size();
    const bool root = group.is_root();
    const double bus_factor = 2.0 * (world - 1) / world;

#if defined(TESSERA_WITH_NCCL)
    ncclComm_t nccl = nullptr;
    cudaStream_t nccl_stream = nullptr;
    if (device.is_cuda()) {
      ncclUniqueId id;
      if (root) BENCH_NCCL_CHECK(ncclGetUniqueId(&id));
      MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
      BENCH_NCCL_CHECK(ncclCommInitRank(&nccl, world, id, group.rank()));
      cudaStreamCreateWithFlags(&nccl_stream, cudaStreamNonBlocking);
    }
#else
    if (device.is_cuda()) {
      std::fprintf(stderr, "allreduce_bench: this build has no NCCL; the raw peer is missing\n");
      return 1;
    }
#endif
    const std::string peer = device.is_cuda() ? "ncclAllReduce" : "MPI_Allreduce";
    if (root) {
      std::printf("%d rank(s), %s, f32, Tessera %s communicator; bus bandwidth 2(n-1)/n*S/t in GB/s%s\n\n", world,
                  device.str().c_str(), comm.backend(), world == 1 ? " (0 at one rank: see algbw)" : "");
      std::printf("| size | buckets | Reducer ms | Reducer busbw | Reducer algbw | all_reduce ms | all_reduce busbw | %s ms | "
                  "%s busbw | %s per bucket ms | %s / Reducer | %s per bucket / Reducer | %s / all_reduce |\n",
                  peer.c_str(), peer.c_str(), peer.c_str(), peer.c_str(), peer.c_str(), peer.c_str());
      std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    }
    for (int64_t mib = 1; mib <= max_mib; mib *= 4) {
      const int64_t bytes = mib << 20;
      const int64_t numel = bytes / 4;
      // About 256 MiB (CPU) or 8 GiB (GPU) moved per method and size, 2 to 50 calls.
      const int64_t budget = device.is_cuda() ? (int64_t{8} << 30) : (int64_t{256} << 20);
      const int iters = static_cast<int>(std::clamp<int64_t>(budget / bytes, 2, 50));

      // Our Reducer: 16 gradient tensors of numel / 16 elements.
      std::vector<std::pair<std::string, Tensor>> params;
      for (int i = 0; i < 16; ++i) {
        Tensor p = Tensor::zeros({numel / 16}, DType::f32, device);
        p.set_requires_grad(true);
        p.set_grad(Tensor::full({numel / 16}, 1.0 + group.rank(), DType::f32, device));
        params.emplace_back("g" + std::to_string(i), p);
      }
      double reducer_s = 0.0;
      std::vector<std::pair<int64_t, int64_t>> bucket_ranges;  // (offset, count) in elements
      {
        dist::Reducer reducer(params, comm, {});
        int64_t offset = 0;
        for (const auto& bucket : reducer.buckets()) {
          bucket_ranges.emplace_back(offset, bucket.numel);
          offset += bucket.numel;
        }
        reducer_s = time_calls(iters, device, [&] {
          reducer.finish();
          device_sync(device);  // every method waits for its result before the next call
        });
      }
      params.clear();

      // One Communicator::all_reduce of the whole buffer.
      Tensor flat = Tensor::full({numel}, 1.0, DType::f32, device);
      const double comm_s = time_calls(iters, device, [&] { comm.all_reduce(flat, dist::ReduceOp::sum).synchronize(); });

      // The raw call on the same kind of buffer.
      // And one raw call per bucket of the Reducer (what bucketing costs without our layers).
      double raw_s = 0.0, raw_buckets_s = 0.0;
      float* data = flat.data<float>();
      if (device.is_cpu()) {
        const auto raw = [&](int64_t offset, int64_t count) {
          MPI_Allreduce(MPI_IN_PLACE, data + offset, static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        };
        raw_s = time_calls(iters, device, [&] { raw(0, numel); });
        raw_buckets_s = time_calls(iters, device, [&] {
          for (const auto& [offset, count] : bucket_ranges) raw(offset, count);
        });
      } else {
#if defined(TESSERA_WITH_NCCL)
        const auto raw = [&](int64_t offset, int64_t count) {
          BENCH_NCCL_CHECK(ncclAllReduce(data + offset, data + offset, count, ncclFloat, ncclSum, nccl, nccl_stream));
        };
        raw_s = time_calls(iters, device, [&] {
          raw(0, numel);
          cudaStreamSynchronize(nccl_stream);
        });
        raw_buckets_s = time_calls(iters, device, [&] {
          for (const auto& [offset, count] : bucket_ranges) raw(offset, count);
          cudaStreamSynchronize(nccl_stream);
        });
#endif
      }
      if (root) {
        const auto gbs = [&](double seconds, double factor) { return factor * static_cast<double>(bytes) / seconds / 1e9; };
        std::printf("| %lld MiB | %zu | %.3f | %.2f | %.2f | %.3f | %.2f | %.3f | %.2f | %.3f | %.2f | %.2f | %.2f |\n",
                    static_cast<long long>(mib), bucket_ranges.size(), reducer_s * 1e3, gbs(reducer_s, bus_factor),
                    gbs(reducer_s, 1.0), comm_s * 1e3, gbs(comm_s, bus_factor), raw_s * 1e3, gbs(raw_s, bus_factor),
                    raw_buckets_s * 1e3, raw_s / reducer_s, raw_buckets_s / reducer_s, raw_s / comm_s);
        std::fflush(stdout);
      }
    }
#if defined(TESSERA_WITH_NCCL)
    if (nccl != nullptr) {
      ncclCommDestroy(nccl);
      cudaStreamDestroy(nccl_stream);
    }
#endif
    dist::ProcessGroup::shutdown();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "allreduce_bench: %s\n", e.what());
    dist::abort_job(1);
  }
  return 0;
}
