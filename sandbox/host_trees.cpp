// Which host trees may become overlays (filesystem.root `overlay`): the
// tool trees, the package manager's state, the /etc allowlist's folders.
// Linked by both sides: the broker plans with it (job_plan.cpp), and
// gatehouse-sandbox checks every overlay against it again before mounting
// one, so a plan can never turn another host path (the workspace, a
// read_write path) into an overlay.
#include <string>

#include "sandbox/facilities.hpp"

namespace gh::sandbox {

namespace {

constexpr const char* kToolTrees[] = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
constexpr const char* kStateTrees[] = {"/var/lib/dpkg", "/var/lib/apt", "/var/cache/apt", "/var/cache/debconf"};

}  // namespace

bool is_state_tree(const std::string& host) {
  for (const char* t : kStateTrees)
    if (host == t) return true;
  return false;
}

bool is_overlay_tree(const std::string& host) {
  for (const char* t : kToolTrees)
    if (host == t) return true;
  if (is_state_tree(host)) return true;
  // Directories of the /etc allowlist (alternatives, apt, dpkg, ssl/certs...).
  if (host.rfind("/etc/", 0) == 0) {
    const std::string name = host.substr(5);
    for (size_t i = 0; i < etc_allowlist_size(); ++i)
      if (name == etc_allowlist_begin()[i]) return true;
  }
  return false;
}

}  // namespace gh::sandbox
