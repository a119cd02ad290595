// The constructors of the two communicator backends. Internal to framework/dist.
//
// defines: tessera::dist::make_mpi_communicator, make_nccl_communicator
#pragma once

#include "framework/dist/mpi_check.h"

#include <memory>

#include "framework/dist/communicator.h"
#include "framework/dist/watchdog.h"

namespace tessera::dist {

// Host tensors over MPI, on a duplicate of `world`.
std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm world, Watchdog& watchdog, CommStats* stats);

// Device tensors of `device` over NCCL. Collective: every rank calls it; the ncclUniqueId is
// broadcast from rank 0 over `bootstrap` (the MPI communicator). Without NCCL in the build this
// throws an error saying so.
std::unique_ptr<Communicator> make_nccl_communicator(Device device, Communicator& bootstrap, Watchdog& watchdog,
                                                     CommStats* stats);

}  // namespace tessera::dist
