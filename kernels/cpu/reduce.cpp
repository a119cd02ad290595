// CPU reductions (kernels/reduce.h). Sums over long rows are blocked (fixed 1024-element
// blocks summed in order) so precision stays good and the order is independent of threads.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/common.h"
#include "kernels/reduce.h"

namespace tessera::kernels {
namespace {

constexpr int64_t kBlock = 1024;

template <typename A>
A identity(ReduceOp op) {
  if (op == ReduceOp::sum) return A(0);
  return op == ReduceOp::max ? -std::numeric_limits<A>::infinity() : std::numeric_limits<A>::infinity();
}

template <typename A>
A combine(ReduceOp op, A acc, A v) {
  if (op == ReduceOp::sum) return acc + v;
  if (std::isnan(v) || std::isnan(acc)) return std::numeric_limits<A>::quiet_NaN();
  return op == ReduceOp::max ? (v > acc ? v : acc) : (v < acc ? v : acc);
}

}  // namespace

void reduce_cpu(ReduceOp op, DType dtype, const void* in, void* out, int64_t outer, int64_t reduce, int64_t inner) {
  float_dtype_switch(dtype, "reduce", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = cpu::AccType<T>;
    const T* x = static_cast<const T*>(in);
    T* y = static_cast<T*>(out);
    if (inner == 1) {
      auto row_reduce = [&](const T* row) {
        A total = identity<A>(op);
        for (int64_t b = 0; b < reduce; b += kBlock) {
          A acc = identity<A>(op);
          const int64_t e = std::min(reduce, b + kBlock);
          for (int64_t r = b; r < e; ++r) acc = combine(op, acc, cpu::load(row[r]));
          total = combine(op, total, acc);
        }
        return total;
      };
      if (outer == 1 && reduce > 4 * kBlock) {  // one long row: blocks in parallel, combined in order
        const int64_t blocks = (reduce + kBlock - 1) / kBlock;
        std::vector<A> partial(static_cast<size_t>(blocks));
        cpu::parallel_for(blocks, [&](int64_t begin, int64_t end) {
          for (int64_t b = begin; b < end; ++b) {
            A acc = identity<A>(op);
            const int64_t e = std::min(reduce, (b + 1) * kBlock);
            for (int64_t r = b * kBlock; r < e; ++r) acc = combine(op, acc, cpu::load(x[r]));
            partial[b] = acc;
          }
        }, 4);
        A total = identity<A>(op);
        for (A p : partial) total = combine(op, total, p);
        y[0] = cpu::store<T>(total);
        return;
      }
      cpu::parallel_for(outer, [&](int64_t begin, int64_t end) {
        for (int64_t o = begin; o < end; ++o) y[o] = cpu::store<T>(row_reduce(x + o * reduce));
      }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(reduce, 1)));
      return;
    }
    // inner > 1: accumulate whole rows of `inner` values (vectorisable), block by block.
    cpu::parallel_for(outer * ((inner + 255) / 256), [&](int64_t begin, int64_t end) {
      std::vector<A> total(256), acc(256);
      const int64_t tiles = (inner + 255) / 256;
      for (int64_t job = begin; job < end; ++job) {
        const int64_t o = job / tiles;
        const int64_t i0 = (job % tiles) * 256;
        const int64_t width = std::min<int64_t>(256, inner - i0);
        std::fill(total.begin(), total.begin() + width, identity<A>(op));
        for (int64_t b = 0; b < reduce; b += kBlock) {
          std::fill(acc.begin(), acc.begin() + width, identity<A>(op));
          const int64_t e = std::min(reduce, b + kBlock);
          for (int64_t r = b; r < e; ++r) {
            const T* row = x + (o * reduce + r) * inner + i0;
            for (int64_t i = 0; i < width; ++i) acc[i] = combine(op, acc[i], cpu::load(row[i]));
          }
          for (int64_t i = 0; i < width; ++i) total[i] = combine(op, total[i], acc[i]);
        }
        for (int64_t i = 0; i < width; ++i) y[o * inner + i0 + i] = cpu::store<T>(total[i]);
      }
    }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(reduce * 256, 1)));
  });
}

void argreduce_cpu(ReduceOp op, DType dtype, const void* in, void* values, int64_t* indices, int64_t outer,
                   int64_t reduce, int64_t inner) {
  float_dtype_switch(dtype, "argmax/argmin", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = cpu::AccType<T>;
    const T* x = static_cast<const T*>(in);
    T* v = static_cast<T*>(values);
    cpu::parallel_for(outer * inner, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        const int64_t o = j / inner, i = j % inner;
        A best = cpu::load(x[o * reduce * inner + i]);
        int64_t best_r = 0;
        for (int64_t r = 1; r < reduce && !std::isnan(best); ++r) {
          const A val = cpu::load(x[(o * reduce + r) * inner + i]);
          const bool better = std::isnan(val) || (op == ReduceOp::max ? val > best : val < best);
          if (better) {
            best = val;
            best_r = r;
          }
        }
        v[j] = cpu::store<T>(best);
        indices[j] = best_r;
      }
    }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(reduce, 1)));
  });
}

}  // namespace tessera::kernels
