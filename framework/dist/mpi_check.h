// The MPI check macro and the MPI handles for Tessera's dtypes. Include only from framework/dist
// .cpp files (it pulls in <mpi.h>, and is how dist code includes it).
//
// defines: TESSERA_MPI_CHECK, tessera::dist::mpi_error_text, mpi_datatype, mpi_reduce_op,
//          create_mpi_types, free_mpi_types
//
// TESSERA_MPI_CHECK(statement) reports file:line, the failing statement and MPI_Error_string
// and throws tessera::Error (our communicators set MPI_ERRORS_RETURN, so errors come back as
// codes instead of aborting inside MPI). bf16 and f16 have no MPI datatype: they travel as a
// committed 2-byte contiguous type, reduced by user-defined operations that convert each pair
// of values to f32, add (or compare) there and round the result back once.
#pragma once

// The MPI C API only: Open MPI's deprecated C++ bindings would have to be linked too.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <string>

#include "framework/core/dtype.h"
#include "framework/core/error.h"

namespace tessera::dist {

enum class ReduceOp : uint8_t;

std::string mpi_error_text(int code);

// The datatype a tensor of `dtype` travels as, and the reduction for (op, dtype). Valid after
// create_mpi_types() (called by ProcessGroup::init).
MPI_Datatype mpi_datatype(DType dtype);
MPI_Op mpi_reduce_op(ReduceOp op, DType dtype);
void create_mpi_types();
void free_mpi_types();

}  // namespace tessera::dist

namespace tessera::detail {
[[noreturn]] void throw_mpi_error(const char* file, int line, const char* statement, int code);
}  // namespace tessera::detail

#define TESSERA_MPI_CHECK(statement)                                                        \
  do {                                                                                      \
    const int tessera_mpi_status_ = (statement);                                            \
    if (tessera_mpi_status_ != MPI_SUCCESS)                                                 \
      ::tessera::detail::throw_mpi_error(__FILE__, __LINE__, #statement, tessera_mpi_status_); \
  } while (0)
