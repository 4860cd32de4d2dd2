#include <limits.h>
#include <unistd.h>

#include <vector>

#include "common/libexec.hpp"

namespace gh {

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

}  // namespace gh
