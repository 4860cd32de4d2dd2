// The two halves of gatehouse-checkout (docs/architecture.md). Each runs in
// its own process as an unprivileged uid chosen by the broker; main.cpp
// confines the process and calls one of these.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "checkout/stream.hpp"
#include "common/result.hpp"
#include "common/unique_fd.hpp"

namespace gh::checkout {

// An entry of the tree, relative to its root, as git (or the walk) listed
// it. `dir` is set for a listing entry that names a folder itself (an
// untracked nested repository, a submodule): only the folder is copied.
struct Listed {
  std::string path;
  bool dir = false;
};

struct Listing {
  Info info;
  std::string root;  // the folder all paths are relative to
  UniqueFd root_fd;  // opened once; every entry is opened beneath it
  std::vector<Listed> entries;
};

// The reader, part 1 (before confinement; runs git): opens `folder`,
// checks that it belongs to this process's uid, and lists the git work
// tree holding it or, outside a work tree, the folder itself.
Result<Listing> list_tree(const std::string& folder);

// The reader, part 2: opens listing.root once and streams every entry
// relative to that descriptor, never through a symbolic link. A refused
// entry (see check_path, and anything under a link) stops the stream.
// Returns the End record's counts. `out` is blocking; a write failure is
// reported as ReadFailure::WriterGone so main can stay quiet about it.
enum class ReadFailure { None, Refused, WriterGone };
struct ReadResult {
  ReadFailure failure = ReadFailure::None;
  std::string message;
  End end;
};
ReadResult stream_tree(const Listing& listing, int out);

// The writer, part 1 (before confinement): opens the staging folder and
// checks that it is an empty folder owned by this process's uid.
Result<UniqueFd> open_staging(const std::string& path);

// The writer, part 2: reads a stream from `in` and creates every entry beneath
// `dir_fd` (an empty folder owned by this uid). Stops at the first
// malformed or refused record; what was written so far stays for the
// broker to remove.
Result<Summary> write_tree(int in, int dir_fd);

}  // namespace gh::checkout
