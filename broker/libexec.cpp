// Where gatehouse finds its helper binaries (the worker, the agent, the
// Docker proxy): beside itself (an installed tree or a build folder), in
// ../libexec/gatehouse, in a build folder's subfolder, else the packaged
// place. Each caller lets an environment variable override it first.
#include <limits.h>
#include <unistd.h>

#include "broker/broker.hpp"

namespace gh::broker {

std::string find_libexec(const std::string& name, const std::string& build_subdir) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string dir(self, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    std::vector<std::string> candidates = {dir + "/" + name, dir + "/../libexec/gatehouse/" + name};
    if (!build_subdir.empty()) candidates.push_back(dir + "/" + build_subdir + "/" + name);
    for (const std::string& c : candidates)
      if (access(c.c_str(), X_OK) == 0) return c;
  }
  return "/usr/libexec/gatehouse/" + name;
}

}  // namespace gh::broker
