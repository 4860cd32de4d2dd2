#include "docker/context_repack.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "docker/build_rules.hpp"

namespace gh::docker {

namespace {

struct ReadFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
struct WriteFree {
  void operator()(struct archive* a) const { archive_write_free(a); }
};

struct Sink {
  int fd;
  uint64_t written = 0, max;
  bool over = false;
};

la_ssize_t sink_write(struct archive*, void* data, const void* buf, size_t n) {
  auto* s = static_cast<Sink*>(data);
  if (s->written + n > s->max) {
    s->over = true;
    return -1;
  }
  const char* p = static_cast<const char*>(buf);
  size_t left = n;
  while (left > 0) {
    ssize_t w = write(s->fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    left -= static_cast<size_t>(w);
  }
  s->written += n;
  return static_cast<la_ssize_t>(n);
}

Refusal unreadable(struct archive* a) {
  const char* why = archive_error_string(a);
  return refuse("build-context", std::string("cannot read the build context: ") + (why ? why : "unknown error"), 400);
}

}  // namespace

Checked<Repacked> repack_context(int in, uint64_t max_bytes) {
  std::unique_ptr<struct archive, ReadFree> r(archive_read_new());
  std::unique_ptr<struct archive, WriteFree> w(archive_write_new());
  if (!r || !w) return refuse("build-context", "cannot read the build context (out of memory)", 500);
  archive_read_support_format_tar(r.get());
  support_context_filters(r.get());
  if (archive_read_open_fd(r.get(), in, 64 * 1024) != ARCHIVE_OK)
    return refuse("build-context", std::string("the build context is not a tar archive the daemon reads (plain, "
                                               "gzip, bzip2, xz or zstd): ") +
                                       archive_error_string(r.get()), 400);
  Repacked out;
  out.fd = UniqueFd(memfd_create("build-context-repacked", MFD_CLOEXEC));
  if (out.fd.get() < 0) return refuse("build-context", "cannot hold the build context (memfd_create failed)", 500);
  Sink sink{out.fd.get(), 0, max_bytes};
  archive_write_set_format_pax_restricted(w.get());
  archive_write_set_bytes_in_last_block(w.get(), 1);
  if (archive_write_open(w.get(), &sink, nullptr, sink_write, nullptr) != ARCHIVE_OK)
    return refuse("build-context", "cannot write the build context", 500);
  struct archive_entry* e = nullptr;
  int rc;
  char buf[64 * 1024];
  while ((rc = archive_read_next_header(r.get(), &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
    if (archive_write_header(w.get(), e) < ARCHIVE_WARN) {
      if (sink.over) break;
      return refuse("build-context", std::string("cannot repack the build context: ") + archive_error_string(w.get()), 400);
    }
    for (la_ssize_t n; (n = archive_read_data(r.get(), buf, sizeof buf)) != 0;) {
      if (n < 0) return unreadable(r.get());
      if (archive_write_data(w.get(), buf, static_cast<size_t>(n)) < 0) break;
    }
    if (sink.over) break;
  }
  if (!sink.over && rc != ARCHIVE_EOF && rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return unreadable(r.get());
  if (!sink.over && archive_write_close(w.get()) != ARCHIVE_OK && !sink.over)
    return refuse("build-context", std::string("cannot repack the build context: ") + archive_error_string(w.get()), 400);
  if (sink.over)
    return refuse("build-context", "the build context unpacks to more than " + std::to_string(max_bytes >> 20) +
                                       " MiB; send a smaller context (a .dockerignore helps)", 413);
  out.size = sink.written;
  if (lseek(out.fd.get(), 0, SEEK_SET) != 0) return refuse("build-context", "cannot rewind the build context", 500);
  return out;
}

}  // namespace gh::docker
