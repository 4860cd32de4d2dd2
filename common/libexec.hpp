// Where Gatehouse finds its helper binaries (the broker, the agent, the
// parse child, the checkout copier, the sandbox entry, the worker, the
// Docker proxy): beside the running binary (an installed tree or a build
// folder), in ../libexec/gatehouse, in a build folder's subfolder, else the
// packaged place. Each caller lets an environment variable override it
// first (GATEHOUSE_WORKER...): the processes that read those run as root
// only when root started them.
#pragma once

#include <string>

namespace gh {

std::string find_libexec(const std::string& name, const std::string& build_subdir = "");

}  // namespace gh
