// The checkout writer: runs as the job's host uid, confined by seccomp
// (main.cpp), and turns a hostile record stream into files beneath the
// staging folder. Nothing is resolved by path string: each entry's folder
// is opened beneath the staging descriptor with RESOLVE_NO_SYMLINKS, files
// are created O_EXCL|O_NOFOLLOW, links with symlinkat (copied, never
// followed), and a path under a link this writer made is refused before
// the kernel would refuse it too.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "checkout/beneath.hpp"
#include "checkout/copier.hpp"

namespace gh::checkout {

namespace {

const char* type_name(RecordType t) {
  switch (t) {
    case RecordType::Info: return "info";
    case RecordType::Dir: return "folder";
    case RecordType::File: return "file";
    case RecordType::Symlink: return "link";
    case RecordType::End: return "end";
    case RecordType::Summary: return "summary";
  }
  return "unknown";
}

std::string twice(const std::string& path) { return "`" + path + "` is in the stream twice; refusing to overwrite it"; }

class Writer {
 public:
  Writer(StreamReader& in, int dir_fd) : in_(in), dir_fd_(dir_fd) {}

  Status entry(const std::string& path) {
    if (auto s = check_path(path); !s) return s;
    if (auto link = links_.covering(path); !link.empty()) return err(under_link_message(path, link));
    if (++entries_ > kMaxEntries) return err("the stream has more than " + std::to_string(kMaxEntries) + " entries; copy a smaller tree");
    auto [parent, name] = split_parent(path);
    if (auto s = open_parent(path, parent); !s) return s;
    name_ = name;
    return ok_status();
  }

  Status dir(const Dir& d) {
    if (auto s = entry(d.path); !s) return s;
    if (mkdirat(parent_fd_.get(), name_.c_str(), kDirMode) == 0) return ok_status();
    if (errno != EEXIST) return err("cannot create the folder `" + d.path + "`: " + strerror(errno));
    struct stat st {};
    if (fstatat(parent_fd_.get(), name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) return ok_status();
    return err(twice(d.path));
  }

  Status file(const File& f) {
    if (auto s = entry(f.path); !s) return s;
    if (f.size > kMaxBytes - bytes_) return err("the stream holds more than 4 GiB of files; copy a smaller tree");
    UniqueFd fd(open_beneath(parent_fd_.get(), name_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, file_mode(f.mode)));
    if (fd.get() < 0) {
      if (errno == EEXIST) return err(twice(f.path));
      return err("cannot create `" + f.path + "`: " + strerror(errno));
    }
    std::vector<char> buf(static_cast<size_t>(std::min<uint64_t>(f.size, 256 * 1024)));
    uint64_t left = f.size;
    while (left > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
      if (auto s = in_.content(buf.data(), n); !s) return s;
      if (!write_all(fd.get(), std::string_view(buf.data(), n))) return err("cannot write `" + f.path + "`: " + strerror(errno));
      left -= n;
    }
    bytes_ += f.size;
    ++files_;
    return ok_status();
  }

  Status symlink(const Symlink& l) {
    if (auto s = entry(l.path); !s) return s;
    if (l.target.empty()) return err("the link `" + l.path + "` has an empty target");
    if (l.target.find('\0') != std::string::npos) return err("the link `" + l.path + "` has a NUL byte in its target");
    if (symlinkat(l.target.c_str(), parent_fd_.get(), name_.c_str()) != 0) {
      if (errno == EEXIST) return err(twice(l.path));
      return err("cannot create the link `" + l.path + "`: " + strerror(errno));
    }
    links_.add(l.path);
    ++files_;
    return ok_status();
  }

  uint64_t files() const { return files_; }
  uint64_t bytes() const { return bytes_; }

 private:
  Status open_parent(const std::string& path, const std::string& parent) {
    if (parent_open_ && parent == parent_path_) return ok_status();
    parent_open_ = false;
    int fd = parent.empty() ? dup(dir_fd_) : open_beneath(dir_fd_, parent.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW);
    if (fd < 0) {
      if (errno == ENOENT) return err("`" + path + "` comes before its folder `" + parent + "` in the stream");
      if (errno == ELOOP) return err(under_link_message(path, parent));
      if (errno == ENOTDIR) return err("`" + path + "` lies under `" + parent + "`, which is not a folder");
      return err("cannot open the folder `" + parent + "`: " + strerror(errno));
    }
    parent_fd_ = UniqueFd(fd);
    parent_path_ = parent;
    parent_open_ = true;
    return ok_status();
  }

  StreamReader& in_;
  int dir_fd_;
  LinkSet links_;
  size_t entries_ = 0;
  uint64_t files_ = 0, bytes_ = 0;
  std::string parent_path_, name_;
  UniqueFd parent_fd_;
  bool parent_open_ = false;
};

}  // namespace

Result<UniqueFd> open_staging(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return err("cannot open the staging folder " + path + ": " + strerror(errno));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return err("cannot stat the staging folder " + path + ": " + strerror(errno));
  if (st.st_uid != geteuid())
    return err("the staging folder " + path + " belongs to uid " + std::to_string(st.st_uid) + ", not to the writer's uid " +
               std::to_string(geteuid()));
  int probe = dup(fd.get());
  DIR* d = probe < 0 ? nullptr : fdopendir(probe);
  if (!d) return err("cannot list the staging folder " + path + ": " + strerror(errno));
  bool empty = true;
  while (dirent* e = readdir(d))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = false;
  closedir(d);
  if (!empty) return err("the staging folder " + path + " is not empty; refusing to copy into it");
  return fd;
}

Result<Summary> write_tree(int in, int dir_fd) {
  StreamReader r(in);
  RecordType t{};
  std::string payload;
  if (auto s = r.next(t, payload); !s) return s.error();
  if (t != RecordType::Info) return err(std::string("the stream starts with a ") + type_name(t) + " record, not its info record");
  auto info = decode_record<Info>(payload, "info");
  if (!info) return info.error();
  if (auto s = check_info(*info); !s) return s.error();
  Writer w(r, dir_fd);
  for (;;) {
    if (auto s = r.next(t, payload); !s) return s.error();
    Status s = ok_status();
    switch (t) {
      case RecordType::Dir: {
        auto d = decode_record<Dir>(payload, "folder");
        s = d ? w.dir(*d) : Status(d.error());
        break;
      }
      case RecordType::File: {
        auto f = decode_record<File>(payload, "file");
        s = f ? w.file(*f) : Status(f.error());
        break;
      }
      case RecordType::Symlink: {
        auto l = decode_record<Symlink>(payload, "link");
        s = l ? w.symlink(*l) : Status(l.error());
        break;
      }
      case RecordType::End: {
        auto e = decode_record<End>(payload, "end");
        if (!e) return e.error();
        if (e->files != w.files() || e->bytes != w.bytes())
          return err("the stream's end record counts " + std::to_string(e->files) + " files and " + std::to_string(e->bytes) +
                     " bytes, but it carried " + std::to_string(w.files()) + " files and " + std::to_string(w.bytes()) + " bytes");
        if (auto eof = r.expect_eof(); !eof) return eof.error();
        return Summary{std::move(*info), w.files(), w.bytes()};
      }
      case RecordType::Info:
      case RecordType::Summary:
        return err(std::string("the stream has another ") + type_name(t) + " record after its start");
    }
    if (!s) return s.error();
  }
}

}  // namespace gh::checkout
