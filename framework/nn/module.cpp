// Module (module.h): registration, traversal, state dicts and in-place conversion.
//
// Traversal is depth-first in registration order: a module's own parameters (or buffers)
// first, then each child's under "<child name>.". That is the order and naming of PyTorch's
// named_parameters()/state_dict(), so keys line up with an equivalent torch model.
// A tensor registered in two places (tied weights) is listed once by named_parameters() and
// parameters() — an optimizer must not update it twice — but appears under both keys in the
// state dict, as in PyTorch.
// Conversions (to(device), to(dtype)) replace the storage, strides and dtype inside each
// parameter's TensorImpl, so every handle to the parameter (an optimizer's, a tied module's)
// sees the converted tensor. Views taken earlier keep the old storage.
#include "framework/nn/module.h"

#include <map>
#include <set>
#include <unordered_set>

#include "framework/autograd/grad_mode.h"
#include "framework/core/error.h"

namespace tessera::nn {
namespace {

void check_name(const char* what, const std::string& name) {
  TESSERA_CHECK(!name.empty(), "Module::", what, ": empty name");
  TESSERA_CHECK(name.find('.') == std::string::npos, "Module::", what, ": name \"", name,
                "\" must not contain '.' (dots separate the levels of a dotted path)");
}

// Points `impl` at `converted`'s data (contiguous, offset 0), keeping its autograd fields.
void replace_data(TensorImpl& impl, const Tensor& converted) {
  impl.storage = converted.storage();
  impl.offset = 0;
  impl.strides = converted.strides();
  impl.dtype = converted.dtype();
}

Tensor converted_copy(const Tensor& t, DType dtype, Device device) {
  Tensor out = Tensor::empty(t.shape(), dtype, device);
  copy_into(out, t);
  return out;
}

}  // namespace

bool Module::name_taken(const std::string& name) const {
  for (const auto& [n, _] : parameters_)
    if (n == name) return true;
  for (const auto& [n, _] : buffers_)
    if (n == name) return true;
  for (const auto& [n, _] : children_)
    if (n == name) return true;
  return false;
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  check_name("register_parameter", name);
  TESSERA_CHECK(!name_taken(name), "Module::register_parameter: name \"", name, "\" is already registered");
  TESSERA_CHECK(value.defined(), "Module::register_parameter: parameter \"", name, "\" is undefined");
  TESSERA_CHECK(value.is_leaf(), "Module::register_parameter: parameter \"", name,
                "\" has autograd history; register a leaf (use detach())");
  TESSERA_CHECK(is_floating_point(value.dtype()), "Module::register_parameter: parameter \"", name, "\" is ",
                dtype_name(value.dtype()), "; parameters must be floating point (use a buffer)");
  value.set_requires_grad(true);
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_name("register_buffer", name);
  TESSERA_CHECK(!name_taken(name), "Module::register_buffer: name \"", name, "\" is already registered");
  TESSERA_CHECK(value.defined(), "Module::register_buffer: buffer \"", name, "\" is undefined");
  buffers_.emplace_back(name, value);
  return value;
}

void Module::check_child(const std::string& name, const Module* child) const {
  check_name("register_module", name);
  TESSERA_CHECK(!name_taken(name), "Module::register_module: name \"", name, "\" is already registered");
  TESSERA_CHECK(child != nullptr, "Module::register_module: module \"", name, "\" is null");
  TESSERA_CHECK(child != this, "Module::register_module: a module cannot contain itself (\"", name, "\")");
}

void Module::collect(const std::string& prefix, bool parameters, std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, t] : parameters ? parameters_ : buffers_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", parameters, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> all, unique;
  collect("", true, all);
  std::unordered_set<const TensorImpl*> seen;
  for (auto& entry : all)
    if (seen.insert(entry.second.impl()).second) unique.push_back(std::move(entry));
  return unique;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [_, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, out);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() const {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  for (const auto& [name, child] : children_) {
    out.emplace_back(name, child);
    for (auto& [sub, module] : child->named_modules()) out.emplace_back(name + "." + sub, module);
  }
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (const Tensor& t : parameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  on_train_mode(on);
  for (auto& [_, child] : children_) child->train(on);
}

void Module::state_dict_into(const std::string& prefix, StateDict& out) const {
  for (const auto& [name, t] : parameters_) out.emplace_back(prefix + name, t);
  for (const auto& [name, t] : buffers_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->state_dict_into(prefix + name + ".", out);
}

StateDict Module::state_dict() const {
  StateDict out;
  state_dict_into("", out);
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  std::map<std::string, const Tensor*> given;
  for (const auto& [key, t] : state) {
    TESSERA_CHECK(given.emplace(key, &t).second, "load_state_dict: key \"", key, "\" appears twice");
    TESSERA_CHECK(t.defined(), "load_state_dict: key \"", key, "\" holds an undefined tensor");
  }
  const StateDict own = state_dict();
  std::set<std::string> own_keys;
  std::vector<std::string> missing;
  for (const auto& [key, t] : own) {
    own_keys.insert(key);
    auto it = given.find(key);
    if (it == given.end()) {
      missing.push_back(key);
      continue;
    }
    const Tensor& src = *it->second;
    TESSERA_CHECK(src.shape() == t.shape(), "load_state_dict: key \"", key, "\" has shape ", shape_str(src.shape()),
                  " in the state dict but ", shape_str(t.shape()), " in the module");
  }
  if (strict) {
    std::string unexpected;
    for (const auto& [key, _] : given)
      if (!own_keys.count(key)) unexpected += (unexpected.empty() ? "\"" : ", \"") + key + "\"";
    std::string absent;
    for (const auto& key : missing) absent += (absent.empty() ? "\"" : ", \"") + key + "\"";
    TESSERA_CHECK(missing.empty() && unexpected.empty(), "load_state_dict (strict): ",
                  missing.empty() ? "" : "missing keys " + absent, !missing.empty() && !unexpected.empty() ? "; " : "",
                  unexpected.empty() ? "" : "unexpected keys " + unexpected);
  }
  NoGradGuard no_grad;
  for (const auto& [key, t] : own) {
    auto it = given.find(key);
    if (it != given.end()) copy_into(t, *it->second);  // converts dtype and device
  }
}

void Module::convert(std::optional<Device> device, std::optional<DType> dtype) {
  std::unordered_set<const TensorImpl*> done;
  auto apply = [&](const Tensor& t) {
    if (!done.insert(t.impl()).second) return;
    const bool cast = dtype && is_floating_point(t.dtype());
    const DType to_dtype = cast ? *dtype : t.dtype();
    const Device to_device = device ? *device : t.device();
    if (to_dtype == t.dtype() && to_device == t.device()) return;
    replace_data(*t.impl(), converted_copy(t, to_dtype, to_device));
    const Tensor grad = t.grad();
    if (grad.defined()) {
      const DType grad_dtype = cast ? *dtype : grad.dtype();
      t.set_grad(converted_copy(grad, grad_dtype, to_device));
    }
  };
  NoGradGuard no_grad;
  StateDict all;
  state_dict_into("", all);
  for (const auto& [_, t] : all) apply(t);
}

void Module::to(Device device) {
  require_device(device);
  convert(device, std::nullopt);
}

void Module::to(DType dtype) {
  TESSERA_CHECK(is_floating_point(dtype), "Module::to: target dtype must be floating point, got ",
                dtype_name(dtype));
  convert(std::nullopt, dtype);
}

void Module::zero_grad() {
  for (const Tensor& t : parameters()) t.zero_grad();
}

}  // namespace tessera::nn
