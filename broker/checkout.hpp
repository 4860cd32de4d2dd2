// Checkout staging: the broker's side of gatehouse-checkout
// (docs/architecture.md, checkout/stream.hpp). Root never opens a path in
// the work tree: it decides WHO reads the tree and who writes the copy,
// starts gatehouse-checkout as each, and checks what comes back.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/result.hpp"

namespace gh::broker {

struct CheckoutInfo {
  std::string description;  // "the git work tree /src/app", "the folder /src/app", or "the task's job file"
  std::string source;       // the work tree or folder copied ("" for a task's job file)
  bool git = false;
  std::string branch, sha1, reponame;
  size_t files = 0;  // regular files and symbolic links copied
  uint64_t bytes = 0;
};

struct CheckoutSource {
  std::string job_file;      // the work tree holding this job file (gatehouse run) ...
  std::string config_bytes;  // ... or, when job_file is empty, only these bytes as `config.yml` (a task from the control plane)
};

// `staging` exists, is owned by root, mode 0700, in a root-owned folder; it
// is handed to the job's ids first. The reader runs as the owner of the job
// file's folder (tree_owner below), the writer as job_uid/job_gid; a
// refused or failed copy is an error that says what to do.
Result<CheckoutInfo> stage_checkout(const CheckoutSource& src, const std::string& staging, uid_t job_uid, gid_t job_gid);

// The job file's bytes, read as the owner of its folder (same owner rules
// as the checkout reader), at most max_bytes.
Result<std::string> read_file_as_owner(const std::string& path, size_t max_bytes);

// tree_owner.cpp: which uid reads the folder holding `file`, decided
// without letting a non-root user steer root (the rule is written down
// there). The file's path is resolved by hand, one component at a time.
struct TreeOwner {
  std::string folder;  // the real path of the folder holding the file
  std::string name;    // the file's real name in it
  uid_t uid = 0;       // who reads: the folder's owner
  gid_t gid = 0;       // that owner's primary group (/etc/passwd), else 65534
  dev_t dev = 0;       // the folder as it was judged
  ino_t ino = 0;
};
Result<TreeOwner> tree_owner(const std::string& file);

}  // namespace gh::broker
