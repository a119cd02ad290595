// MPI errors and the MPI handles of Tessera's dtypes (mpi_check.h), including the user-defined
// bf16/f16 reductions: each element pair is converted to f32, added (or compared) there and
// rounded back once, so a sum over ranks loses only one rounding per reduction step.
#include "framework/dist/mpi_check.h"

#include "framework/core/half.h"
#include "framework/dist/communicator.h"

namespace tessera::dist {
namespace {

MPI_Datatype half_type = MPI_DATATYPE_NULL;  // 2 contiguous bytes, for bf16 and f16
MPI_Op bf16_sum = MPI_OP_NULL, bf16_max = MPI_OP_NULL, f16_sum = MPI_OP_NULL, f16_max = MPI_OP_NULL;

template <typename T, bool IsMax>
void reduce_half(void* in, void* inout, int* len, MPI_Datatype*) {
  const T* a = static_cast<const T*>(in);
  T* b = static_cast<T*>(inout);
  for (int i = 0; i < *len; ++i) {
    const float x = to_float(a[i]), y = to_float(b[i]);
    float r;
    if constexpr (IsMax) {
      r = (x > y || x != x) ? x : y;  // NaN wins, like a max that propagates overflow flags
    } else {
      r = x + y;
    }
    b[i] = from_float<T>(r);
  }
}

}  // namespace

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return detail::cat("MPI error code ", code);
  return std::string(text, static_cast<size_t>(length));
}

void create_mpi_types() {
  if (half_type != MPI_DATATYPE_NULL) return;
  TESSERA_MPI_CHECK(MPI_Type_contiguous(2, MPI_BYTE, &half_type));
  TESSERA_MPI_CHECK(MPI_Type_commit(&half_type));
  TESSERA_MPI_CHECK(MPI_Op_create(&reduce_half<bf16, false>, 1, &bf16_sum));
  TESSERA_MPI_CHECK(MPI_Op_create(&reduce_half<bf16, true>, 1, &bf16_max));
  TESSERA_MPI_CHECK(MPI_Op_create(&reduce_half<f16, false>, 1, &f16_sum));
  TESSERA_MPI_CHECK(MPI_Op_create(&reduce_half<f16, true>, 1, &f16_max));
}

void free_mpi_types() {
  if (half_type == MPI_DATATYPE_NULL) return;
  for (MPI_Op* op : {&bf16_sum, &bf16_max, &f16_sum, &f16_max}) MPI_Op_free(op);
  MPI_Type_free(&half_type);
  half_type = MPI_DATATYPE_NULL;
}

MPI_Datatype mpi_datatype(DType dtype) {
  switch (dtype) {
    case DType::f64: return MPI_DOUBLE;
    case DType::f32: return MPI_FLOAT;
    case DType::bf16:
    case DType::f16: return half_type;
    case DType::i64: return MPI_INT64_T;
    case DType::i32: return MPI_INT32_T;
    case DType::u8: return MPI_UINT8_T;
  }
  return MPI_DATATYPE_NULL;
}

MPI_Op mpi_reduce_op(ReduceOp op, DType dtype) {
  const bool max = op == ReduceOp::max;
  if (dtype == DType::bf16) return max ? bf16_max : bf16_sum;
  if (dtype == DType::f16) return max ? f16_max : f16_sum;
  return max ? MPI_MAX : MPI_SUM;
}

}  // namespace tessera::dist

namespace tessera::detail {
void throw_mpi_error(const char* file, int line, const char* statement, int code) {
  throw Error(cat("MPI error ", code, " (", dist::mpi_error_text(code), ") at ", file, ":", line, " in `", statement,
                  "`"));
}
}  // namespace tessera::detail
