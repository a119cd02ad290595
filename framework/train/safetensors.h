// Safetensors files: the weight format of our checkpoints, readable by PyTorch/Hugging Face.
//
// defines: tessera::train::save_safetensors, load_safetensors, load_safetensors_metadata,
//          safetensors_dtype_code
//
// Layout (https://github.com/huggingface/safetensors): an 8-byte little-endian header length
// N, N bytes of JSON header, then the tensor data. The header maps each tensor name to
// {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} (byte offsets into the data
// section) and may hold "__metadata__": {string: string}. dtype codes: F64 F32 BF16 F16 I64
// I32 U8.
//
// Writing: tensors in name order, data back to back; the header is padded with spaces so the
// data starts 8-byte aligned (as the reference writer does). The file is written to
// path + ".tmp", flushed to disk and renamed over `path`, so a crash leaves either the old file
// or the new one, never a torn one.
//
// Reading validates everything and throws tessera::Error naming the file and the problem:
// a file shorter than 8 bytes, a header length beyond the file (or above 100 MiB), a header
// that is not a JSON object, a malformed entry, an unknown dtype, a byte size that does not
// match shape x dtype, offsets out of range, overlapping tensors, and bytes that belong to no
// tensor. Like the reference reader, we do not tolerate gaps or trailing bytes after the last
// tensor: the tensors must tile the data section exactly.
#pragma once

#include <map>
#include <string>

#include "framework/core/device.h"
#include "framework/nn/module.h"

namespace tessera::train {

void save_safetensors(const std::string& path, const nn::StateDict& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Tensors in file order (by data offset), each on `device`.
nn::StateDict load_safetensors(const std::string& path, Device device = Device::cpu());
std::map<std::string, std::string> load_safetensors_metadata(const std::string& path);

const char* safetensors_dtype_code(DType dtype);  // "F32", ...

}  // namespace tessera::train
