// The per-task spool (see spool.hpp for the layout and the rules).
#include "agent/spool.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <deque>
#include <utility>

#include "agent/spool_format.hpp"

namespace gh::agent {
namespace {

using namespace spool_format;  // NOLINT: this file is the format's only user
using protocol::Record;
using protocol::RecordType;

constexpr char kCreatingSuffix[] = ".creating";  // '.' never occurs in a task id
constexpr const char* kKnownFiles[] = {"task.json", "state.json", "records.log", "broker_seq", "task.json.tmp",
                                       "state.json.tmp", "records.log.tmp", "broker_seq.tmp"};
constexpr const char* kBrokerSeqFile = "broker_seq";
constexpr uint64_t kAckedRewriteMinBytes = 1 << 20;

// The spool root holds task tokens: it must be ours and closed to others.
Result<int> open_root(const std::string& root, bool create) {
  if (create && ::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST)
    return err(errno_text("cannot create the spool folder " + root));
  const int fd = open_dir_at(AT_FDCWD, root.c_str());
  if (fd < 0) return err(errno_text("cannot open the spool folder " + root));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_uid != ::geteuid() || (st.st_mode & 022) != 0) {
    ::close(fd);
    return err("the spool folder " + root + " must be owned by uid " + std::to_string(::geteuid()) +
               " and writable by nobody else (chmod 0700 it)");
  }
  return fd;
}

// Removes a task folder holding only the files a spool writes; anything
// else in it makes the rmdir fail, so nothing foreign is deleted.
Status remove_folder(int root_fd, const std::string& name) {
  const int dir = open_dir_at(root_fd, name.c_str());
  if (dir < 0) return err(errno_text("cannot open " + name));
  for (const char* f : kKnownFiles) (void)::unlinkat(dir, f, 0);
  ::close(dir);
  if (::unlinkat(root_fd, name.c_str(), AT_REMOVEDIR) != 0) return err(errno_text("cannot remove " + name));
  if (::fsync(root_fd) != 0) return err(errno_text("fsync of the spool folder"));
  return ok_status();
}

// One record as the spool tracks it; its bytes stay in records.log.
struct Entry {
  int64_t seq = 0;
  int64_t last = 0;  // == seq except for a gap
  RecordType type = RecordType::Output;
  uint64_t offset = 0;       // frame start in records.log
  uint64_t frame_bytes = 0;  // header + payload
  uint64_t out_bytes = 0;    // output data, or the bytes a gap stands for
};

}  // namespace

struct TaskSpool::Impl {
  std::string root, dir_path;
  int dir_fd = -1, log_fd = -1;
  protocol::Task task;
  int64_t created_ns = 0;
  uint64_t limit = 0, compact_at = 0;
  int64_t acked = -1, next_seq = 0, frozen_through = -1;
  std::deque<Entry> entries;  // unacknowledged, in seq order
  uint64_t file_bytes = 0, acked_file_bytes = 0, unacked_output = 0;
  StateFile state;
  bool dirty = false, removed = false;
  bool handed_out = false;  // pending() gave records out in this process
  std::string broken;  // set when records.log may no longer match `entries`

  ~Impl() {
    if (log_fd >= 0) ::close(log_fd);
    if (dir_fd >= 0) ::close(dir_fd);
  }

  std::string file(const char* name) const { return dir_path + "/" + name; }

  Status usable() const {
    if (removed) return err("the spool of task " + task.id + " was removed");
    if (!broken.empty()) return err("the spool " + dir_path + " is unusable: " + broken);
    return ok_status();
  }

  // An older acked coming back after a crash is harmless (those records are
  // resent and ignored), so acks skip the folder's fsync; completions do not.
  Status save_state(bool sync_dir = true) {
    state.acked = acked;
    return write_atomic(dir_fd, kStateFile, encode_state_file(state), sync_dir);
  }

  Status append(Record r) {
    if (auto s = usable(); !s) return s;
    if (state.completion) return err("task " + task.id + " is complete: nothing more is spooled");
    if (next_seq > protocol::kMaxSeq) return err("task " + task.id + " ran out of sequence numbers");
    r.seq = next_seq;
    const std::string payload = encode_payload(r);
    if (payload.size() > kMaxPayloadBytes) return err("a step record of task " + task.id + " is too large to spool");
    const std::string frame = make_frame(payload);
    if (auto s = pwrite_all(log_fd, frame, file_bytes); !s) {
      // Cut the partial frame so the file stays a whole sequence of frames.
      if (::ftruncate(log_fd, static_cast<off_t>(file_bytes)) != 0) broken = "a failed append could not be undone";
      return err("cannot append to " + file(kLogFile) + ": " + s.error().message);
    }
    const uint64_t out = r.type == RecordType::Output ? r.data.size() : 0;
    entries.push_back(Entry{r.seq, r.seq, r.type, file_bytes, frame.size(), out});
    file_bytes += frame.size();
    unacked_output += out;
    next_seq++;
    dirty = true;
    return ok_status();
  }

  // Called after each append. A failure leaves the record spooled (the
  // caller must not append it again) and is retried a quarter bound later.
  Status compact_if_over() {
    if (unacked_output <= compact_at) return ok_status();
    auto s = rewrite(true);
    if (!s) {
      compact_at = std::max(compact_at, unacked_output + limit / 4);
      return err("spooled, but the spool is over its bound: " + s.error().message);
    }
    return s;
  }

  // Everything at or below `through` is stored on the server. A gap that
  // straddles it (a server acking inside a gap) is trimmed to what remains.
  void forget_through(int64_t through) {
    while (!entries.empty() && entries.front().last <= through) {
      acked_file_bytes += entries.front().frame_bytes;
      if (entries.front().type == RecordType::Output) unacked_output -= entries.front().out_bytes;
      entries.pop_front();
    }
    if (!entries.empty() && entries.front().seq <= through) entries.front().seq = through + 1;
  }

  // Picks the middle to drop: after the head (half the bound, and at least
  // everything frozen) and before the tail (a quarter of the bound).
  // Returns the new entry list, or nullopt when nothing can be dropped.
  std::optional<std::deque<Entry>> plan_drop(uint64_t& drop_records, uint64_t& drop_bytes) {
    size_t head = 0;
    uint64_t sum = 0;
    while (head < entries.size()) {
      const Entry& e = entries[head];
      const uint64_t out = e.type == RecordType::Output ? e.out_bytes : 0;
      if (e.seq > frozen_through && sum + out > limit / 2) break;
      sum += out;
      head++;
    }
    if (head > 0 && entries[head - 1].type == RecordType::Gap && entries[head - 1].seq > frozen_through) head--;
    size_t tail = entries.size();
    sum = 0;
    while (tail > head) {
      const Entry& e = entries[tail - 1];
      const uint64_t out = e.type == RecordType::Output ? e.out_bytes : 0;
      if (sum + out > limit / 4) break;
      sum += out;
      tail--;
    }
    if (tail <= head) return std::nullopt;
    Entry gap{entries[head].seq, entries[tail - 1].last, RecordType::Gap, 0, 0, 0};
    for (size_t i = head; i < tail; i++) {
      const Entry& e = entries[i];
      gap.out_bytes += e.out_bytes;
      if (e.type != RecordType::Gap) {
        drop_records++;
        drop_bytes += e.out_bytes;
      }
    }
    std::deque<Entry> kept(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(head));
    kept.push_back(gap);
    kept.insert(kept.end(), entries.begin() + static_cast<std::ptrdiff_t>(tail), entries.end());
    return kept;
  }

  // Writes the unacknowledged records (minus a dropped middle when
  // `drop_middle`) to a new records.log and swaps it in atomically.
  Status rewrite(bool drop_middle) {
    std::deque<Entry> kept = entries;
    uint64_t drop_records = 0, drop_bytes = 0;
    if (drop_middle) {
      auto plan = plan_drop(drop_records, drop_bytes);
      if (!plan) {  // everything over the bound was handed out already
        compact_at = std::max(limit, unacked_output + limit / 4);
        return ok_status();
      }
      kept = std::move(*plan);
    }
    const std::string tmp = std::string(kLogFile) + ".tmp";
    const int fd = ::openat(dir_fd, tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return err(errno_text("cannot create " + file(kLogFile) + ".tmp"));
    std::string out = log_header(kept.empty() ? next_seq : kept.front().seq), frame;
    uint64_t written = 0;
    Status s = ok_status();
    for (Entry& e : kept) {
      const bool rebuild = e.type == RecordType::Gap;  // new, merged or trimmed: re-encode from the entry
      if (rebuild) {
        Record g;
        g.type = RecordType::Gap;
        g.seq = e.seq;
        g.last_seq = e.last;
        g.bytes = e.out_bytes;
        frame = make_frame(encode_payload(g));
      } else if (s = pread_all(log_fd, frame, e.frame_bytes, e.offset); !s) {
        break;
      } else if (!frame_checksum_ok(frame)) {
        s = err("a record changed on disk since it was written (checksum mismatch)");
        break;
      }
      e.offset = written + out.size();
      e.frame_bytes = frame.size();
      out += frame;
      if (out.size() >= (1 << 20)) {
        if (s = write_all(fd, out); !s) break;
        written += out.size();
        out.clear();
      }
    }
    if (s) s = write_all(fd, out);
    written += out.size();
    if (s && ::fsync(fd) != 0) s = err(errno_text("fsync"));
    if (s && ::renameat(dir_fd, tmp.c_str(), dir_fd, kLogFile) != 0) s = err(errno_text("rename"));
    if (s && ::fsync(dir_fd) != 0) s = err(errno_text("fsync of the folder"));
    if (!s) {
      ::close(fd);
      (void)::unlinkat(dir_fd, tmp.c_str(), 0);
      return err("compacting " + file(kLogFile) + ": " + s.error().message);
    }
    ::close(log_fd);
    log_fd = fd;
    entries = std::move(kept);
    file_bytes = written;
    acked_file_bytes = 0;
    dirty = false;
    unacked_output = 0;
    for (const Entry& e : entries) unacked_output += e.type == RecordType::Output ? e.out_bytes : 0;
    // Frozen records cannot be dropped: wait for another quarter before trying again.
    compact_at = std::max(limit, unacked_output + limit / 4);
    if (!drop_middle) return ok_status();
    state.dropped_records += drop_records;
    state.dropped_bytes += drop_bytes;
    return save_state();
  }

  // Reads records.log, cuts a torn tail, checks framing and seq order.
  Status scan_log() {
    struct stat st {};
    if (::fstat(log_fd, &st) != 0 || !S_ISREG(st.st_mode)) return err("not a regular file");
    uint64_t size = static_cast<uint64_t>(st.st_size);
    std::string buf;
    if (size < kLogHeaderBytes || !pread_all(log_fd, buf, kLogHeaderBytes, 0) || buf.compare(0, 8, kLogMagic) != 0 ||
        checksum(std::string_view(buf).substr(0, 16)) != get_le(buf, 16, 8))
      return err("no valid GHSPOOL1 header");
    next_seq = static_cast<int64_t>(get_le(buf, 8, 8));
    if (next_seq < 0 || next_seq > protocol::kMaxSeq + 1) return err("the header names an impossible seq");
    const int64_t first_seq = next_seq;
    uint64_t pos = kLogHeaderBytes;
    std::string hdr;
    while (pos < size) {
      const uint64_t rem = size - pos;
      bool torn = rem < kFrameHeaderBytes;
      uint64_t len = 0;
      std::string why;
      if (!torn) {
        if (auto s = pread_all(log_fd, hdr, kFrameHeaderBytes, pos); !s) return err(s.error().message);
        len = get_le(hdr, 8, 4);
        if (len < kMinPayloadBytes || len > kMaxPayloadBytes) why = "impossible length";
        else if (len > rem - kFrameHeaderBytes) torn = true;
      }
      if (!torn && why.empty()) {
        if (auto s = pread_all(log_fd, buf, len, pos + kFrameHeaderBytes); !s) return err(s.error().message);
        if (checksum(hdr.substr(8) + buf) != get_le(hdr, 0, 8)) why = "checksum mismatch";
        // A bad last frame is a write the crash interrupted.
        if (!why.empty() && pos + kFrameHeaderBytes + len == size) torn = true;
      }
      if (!torn && !why.empty()) {
        if (!all_zero(log_fd, pos, size))
          return err("the record at byte " + std::to_string(pos) + " is corrupt (" + why +
                     ") and more data follows it");
        torn = true;  // the size grew but the data never reached the disk
      }
      if (torn) {
        if (::ftruncate(log_fd, static_cast<off_t>(pos)) != 0 || ::fsync(log_fd) != 0)
          return err(errno_text("cannot cut the torn last record"));
        size = pos;
        break;
      }
      auto rec = decode_payload(buf);
      if (!rec) return err("the record at byte " + std::to_string(pos) + ": " + rec.error().message);
      if (rec->seq != next_seq)
        return err("record seq " + std::to_string(rec->seq) + " where " + std::to_string(next_seq) +
                   " was expected");
      const Entry e{rec->seq, rec->type == RecordType::Gap ? rec->last_seq : rec->seq, rec->type, pos,
                    kFrameHeaderBytes + len,
                    rec->type == RecordType::Output ? rec->data.size() : rec->type == RecordType::Gap ? rec->bytes : 0};
      entries.push_back(e);
      if (e.type == RecordType::Output) unacked_output += e.out_bytes;
      next_seq = e.last + 1;
      pos += e.frame_bytes;
    }
    file_bytes = size;
    if (acked < first_seq - 1) acked = first_seq - 1;  // a compaction finished after state.json was written
    if (acked > next_seq - 1)
      return err("state.json says record " + std::to_string(acked) + " was acknowledged but records.log ends at " +
                 std::to_string(next_seq - 1));
    if (state.completion && state.completion->last_seq != next_seq - 1)
      return err("the completion names last record " + std::to_string(state.completion->last_seq) +
                 " but records.log ends at " + std::to_string(next_seq - 1));
    forget_through(acked);
    return ok_status();
  }
};

namespace {

Result<std::unique_ptr<TaskSpool::Impl>> load_folder(int root_fd, const std::string& root, const std::string& name,
                                                     uint64_t limit) {
  auto impl = std::make_unique<TaskSpool::Impl>();
  impl->root = root;
  impl->dir_path = root + "/" + name;
  impl->limit = impl->compact_at = limit;
  impl->dir_fd = open_dir_at(root_fd, name.c_str());
  const std::string& where = impl->dir_path;
  auto fail = [&](const char* file, const std::string& why) { return err(where + "/" + file + ": " + why); };
  struct stat st {};
  if (impl->dir_fd < 0) return err(errno_text("cannot open " + where));
  if (::fstat(impl->dir_fd, &st) != 0 || st.st_uid != ::geteuid()) return err(where + " is not owned by the agent");
  auto task_text = read_small(impl->dir_fd, kTaskFile, kMaxTaskFileBytes);
  if (!task_text) return fail(kTaskFile, task_text.error().message);
  auto task = decode_task_file(*task_text, impl->created_ns);
  if (!task) return fail(kTaskFile, task.error().message);
  if (task->id != name) return fail(kTaskFile, "it belongs to another task id");
  impl->task = std::move(*task);
  auto state_text = read_small(impl->dir_fd, kStateFile, kMaxStateFileBytes);
  if (!state_text) return fail(kStateFile, state_text.error().message);
  auto state = decode_state_file(*state_text);
  if (!state) return fail(kStateFile, state.error().message);
  impl->state = std::move(*state);
  impl->acked = impl->state.acked;
  (void)::unlinkat(impl->dir_fd, "state.json.tmp", 0);
  (void)::unlinkat(impl->dir_fd, "records.log.tmp", 0);
  impl->log_fd = ::openat(impl->dir_fd, kLogFile, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (impl->log_fd < 0) return fail(kLogFile, errno_text("cannot open it"));
  if (auto s = impl->scan_log(); !s) return fail(kLogFile, s.error().message);
  impl->frozen_through = impl->next_seq - 1;  // an earlier agent may have sent any of them
  return impl;
}

}  // namespace

TaskSpool::TaskSpool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TaskSpool::TaskSpool(TaskSpool&&) noexcept = default;
TaskSpool& TaskSpool::operator=(TaskSpool&&) noexcept = default;
TaskSpool::~TaskSpool() = default;

Result<TaskSpool> TaskSpool::create(const std::string& spool_root, const protocol::Task& task, uint64_t limit_bytes) {
  // The id becomes a folder name: check it before it touches the disk (and
  // do not echo a hostile one into the log).
  if (auto p = protocol::task_id_problem(task.id); !p.empty()) return err("refusing to spool a task: its id " + p);
  if (auto p = protocol::token_problem(task.token); !p.empty()) return err("refusing to spool task " + task.id + ": its token " + p);
  if (limit_bytes < kMinSpoolLimitBytes)
    return err("the spool limit must be at least " + std::to_string(kMinSpoolLimitBytes) + " bytes");
  auto root_fd = open_root(spool_root, true);
  if (!root_fd) return root_fd.error();
  const int rfd = *root_fd;
  const std::string staging = task.id + kCreatingSuffix;
  struct stat st {};
  Status s = ok_status();
  auto impl = std::make_unique<Impl>();
  if (::fstatat(rfd, task.id.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    s = err("task " + task.id + " is already spooled in " + spool_root + " (recover it instead)");
  } else if (::fstatat(rfd, staging.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !(s = remove_folder(rfd, staging))) {
  } else if (::mkdirat(rfd, staging.c_str(), 0700) != 0) {
    s = err(errno_text("cannot create " + spool_root + "/" + staging));
  } else {
    impl->root = spool_root;
    impl->dir_path = spool_root + "/" + task.id;
    impl->task = task;
    impl->limit = impl->compact_at = limit_bytes;
    impl->created_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count();
    impl->dir_fd = open_dir_at(rfd, staging.c_str());
    std::string task_text;
    try {
      task_text = encode_task_file(task, impl->created_ns);
    } catch (const std::exception&) {
      s = err("task " + task.id + " holds text that is not UTF-8; cannot spool it");
    }
    if (s && impl->dir_fd < 0) s = err(errno_text("cannot open " + staging));
    if (s) s = write_atomic(impl->dir_fd, kTaskFile, task_text);
    if (s) s = impl->save_state();
    if (s) {
      impl->log_fd = ::openat(impl->dir_fd, kLogFile, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (impl->log_fd < 0) s = err(errno_text("cannot create records.log"));
    }
    const std::string header = log_header(0);
    if (s) s = write_all(impl->log_fd, header);
    if (s && ::fsync(impl->log_fd) != 0) s = err(errno_text("fsync records.log"));
    impl->file_bytes = header.size();
    if (s && ::renameat2(rfd, staging.c_str(), rfd, task.id.c_str(), RENAME_NOREPLACE) != 0)
      s = err(errno_text("cannot rename " + staging + " to " + task.id));
    if (s && ::fsync(rfd) != 0) s = err(errno_text("fsync of " + spool_root));
    if (!s) {
      (void)remove_folder(rfd, staging);
      s = err("creating the spool of task " + task.id + " in " + spool_root + ": " + s.error().message);
    }
  }
  ::close(rfd);
  if (!s) return s.error();
  return TaskSpool(std::move(impl));
}

Result<std::vector<TaskSpool>> TaskSpool::recover(const std::string& spool_root, uint64_t limit_bytes,
                                                  std::vector<std::string>& problems) {
  if (limit_bytes < kMinSpoolLimitBytes)
    return err("the spool limit must be at least " + std::to_string(kMinSpoolLimitBytes) + " bytes");
  std::vector<TaskSpool> out;
  struct stat st {};
  if (::lstat(spool_root.c_str(), &st) != 0 && errno == ENOENT) return out;  // nothing spooled yet
  auto root_fd = open_root(spool_root, false);
  if (!root_fd) return root_fd.error();
  const int rfd = *root_fd;
  std::vector<std::string> names;
  const int list_fd = ::dup(rfd);
  DIR* d = list_fd >= 0 ? ::fdopendir(list_fd) : nullptr;
  if (d == nullptr) {
    if (list_fd >= 0) ::close(list_fd);
    ::close(rfd);
    return err(errno_text("cannot list " + spool_root));
  }
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  const std::string suffix = kCreatingSuffix;
  for (const std::string& name : names) {
    const std::string where = spool_root + "/" + name;
    if (name.size() > suffix.size() && name.ends_with(suffix) &&
        protocol::task_id_problem(name.substr(0, name.size() - suffix.size())).empty()) {
      auto s = remove_folder(rfd, name);
      problems.push_back(s ? "removed " + where + ": the agent stopped while creating it, before the task ran"
                           : where + ": half-created and could not be removed (" + s.error().message + "); delete it");
      continue;
    }
    if (!protocol::task_id_problem(name).empty()) {
      problems.push_back(where + ": not a task folder (the name is no task id); move it out of the spool folder");
      continue;
    }
    auto impl = load_folder(rfd, spool_root, name, limit_bytes);
    if (!impl) {
      problems.push_back(impl.error().message + " (the folder is left as it is: inspect it, then delete it)");
      continue;
    }
    out.push_back(TaskSpool(std::move(*impl)));
  }
  ::close(rfd);
  std::stable_sort(out.begin(), out.end(), [](const TaskSpool& a, const TaskSpool& b) {
    return a.impl_->created_ns < b.impl_->created_ns;
  });
  return out;
}

const protocol::Task& TaskSpool::task() const { return impl_->task; }
const std::string& TaskSpool::path() const { return impl_->dir_path; }
int64_t TaskSpool::last_seq() const { return impl_->next_seq - 1; }
int64_t TaskSpool::acked() const { return impl_->acked; }
uint64_t TaskSpool::pending_output_bytes() const { return impl_->unacked_output; }
uint64_t TaskSpool::dropped_bytes() const { return impl_->state.dropped_bytes; }
uint64_t TaskSpool::dropped_records() const { return impl_->state.dropped_records; }
std::optional<protocol::Completion> TaskSpool::completion() const { return impl_->state.completion; }

Status TaskSpool::append_output(std::string_view bytes) {
  Status compact_error = ok_status();
  while (!bytes.empty()) {
    Record r;
    r.type = RecordType::Output;
    r.data.assign(bytes.substr(0, protocol::kMaxOutputRecordBytes));
    bytes.remove_prefix(r.data.size());
    if (auto s = impl_->append(std::move(r)); !s) return s;
    if (auto s = impl_->compact_if_over(); !s) compact_error = s;
  }
  return compact_error;
}

Status TaskSpool::append_step(protocol::Record step) {
  if (step.type != RecordType::Step) return err("append_step takes step records only");
  if (auto s = impl_->append(std::move(step)); !s) return s;
  return impl_->compact_if_over();
}

Status TaskSpool::sync() {
  if (auto s = impl_->usable(); !s) return s;
  if (!impl_->dirty) return ok_status();
  if (::fdatasync(impl_->log_fd) != 0) return err(errno_text("fdatasync " + impl_->file(kLogFile)));
  impl_->dirty = false;
  return ok_status();
}

namespace {
constexpr uint64_t kRecordOverhead = 64;  // {"seq":N,"type":"output","data":""}, and room
}  // namespace

Result<std::vector<Record>> TaskSpool::pending(size_t max_records, size_t max_bytes) {
  if (auto s = sync(); !s) return s.error();
  Impl& m = *impl_;
  std::vector<Record> out;
  size_t n = 0;
  uint64_t bytes = 0;
  while (n < m.entries.size() && n < max_records) {
    const Entry& e = m.entries[n];
    // What the record costs once encoded for the wire: output as base64,
    // and each record's JSON around it. A raw count let 768 KiB of short
    // lines grow past the 1 MiB request bound, and the call was refused
    // again on every retry.
    const uint64_t cost = (e.type == RecordType::Output ? 4 * ((e.out_bytes + 2) / 3) : e.frame_bytes) + kRecordOverhead;
    if (n > 0 && bytes + cost > max_bytes) break;
    bytes += cost;
    n++;
  }
  if (n == 0) return out;
  const uint64_t start = m.entries[0].offset;
  std::string span;
  if (auto s = pread_all(m.log_fd, span, m.entries[n - 1].offset + m.entries[n - 1].frame_bytes - start, start); !s)
    return err(m.file(kLogFile) + ": " + s.error().message);
  for (size_t i = 0; i < n; i++) {
    const Entry& e = m.entries[i];
    const std::string_view frame = std::string_view(span).substr(e.offset - start, e.frame_bytes);
    auto rec = frame_checksum_ok(frame) ? decode_payload(frame.substr(kFrameHeaderBytes))
                                                                : Result<Record>(err("checksum mismatch"));
    if (rec && rec->type == RecordType::Gap && rec->last_seq == e.last) rec->seq = e.seq;  // trimmed by an ack
    if (!rec || rec->seq != e.seq || rec->type != e.type) {
      m.broken = "record " + std::to_string(e.seq) + " changed on disk";
      return err(m.file(kLogFile) + ": record " + std::to_string(e.seq) + " changed on disk since it was written (" +
                 (rec ? std::string("wrong record") : rec.error().message) + ")");
    }
    out.push_back(std::move(*rec));
  }
  m.frozen_through = std::max(m.frozen_through, m.entries[n - 1].last);
  m.handed_out = true;
  return out;
}

Status TaskSpool::acknowledge(int64_t acked) {
  Impl& m = *impl_;
  if (auto s = m.usable(); !s) return s;
  if (acked <= m.acked) return ok_status();  // a late answer to an earlier call
  if (acked > m.next_seq - 1)
    return err("the control plane acknowledged record " + std::to_string(acked) + " of task " + m.task.id +
               ", but the last record is " + std::to_string(m.next_seq - 1));
  m.forget_through(acked);
  m.acked = acked;
  m.compact_at = std::max(m.limit, std::min(m.compact_at, m.unacked_output + m.limit / 4));
  if (auto s = m.save_state(false); !s) return err(m.dir_path + ": " + s.error().message);
  // Rewriting costs fsyncs: wait until the acknowledged part is large as
  // well as most of the file.
  const uint64_t worth = std::max(kAckedRewriteMinBytes, m.limit / 4);
  if (m.acked_file_bytes >= worth && m.acked_file_bytes * 2 > m.file_bytes) return m.rewrite(false);
  return ok_status();
}

Status TaskSpool::set_completion(protocol::Completion completion) {
  Impl& m = *impl_;
  if (auto s = sync(); !s) return s;
  if (m.state.completion) return err("task " + m.task.id + " already has a completion");
  completion.last_seq = m.next_seq - 1;
  m.state.completion = std::move(completion);
  if (auto s = m.save_state(); !s) {
    m.state.completion.reset();
    return err(m.dir_path + ": " + s.error().message);
  }
  return ok_status();
}

uint64_t TaskSpool::broker_seq() const {
  auto text = read_small(impl_->dir_fd, kBrokerSeqFile, 64);
  if (!text) return 0;
  return std::strtoull(text->c_str(), nullptr, 10);
}

Status TaskSpool::set_broker_seq(uint64_t seq) {
  // The folder's own entry for it needs no fsync: a lost update only means
  // the broker's events through it come again; the records they made are
  // cut on recovery (cut_unmarked_records) and spooled again.
  return write_atomic(impl_->dir_fd, kBrokerSeqFile,
                      std::to_string(seq) + " " + std::to_string(impl_->next_seq) + "\n", false);
}

Result<uint64_t> TaskSpool::cut_unmarked_records() {
  Impl& m = *impl_;
  if (auto s = m.usable(); !s) return s.error();
  // Only at recovery: once this process has handed records out, any of
  // them may be on the server.
  if (m.state.completion || m.handed_out) return uint64_t{0};
  // S: the spool's next seq when B was written; no file: nothing was marked.
  int64_t marked_next = 0;
  if (auto text = read_small(m.dir_fd, kBrokerSeqFile, 64)) {
    const char* p = text->c_str();
    char* end = nullptr;
    (void)std::strtoull(p, &end, 10);
    if (end && *end == ' ') marked_next = static_cast<int64_t>(std::strtoull(end + 1, nullptr, 10));
    else return uint64_t{0};  // an older agent's file: no S to cut at
  }
  if (marked_next >= m.next_seq) return uint64_t{0};
  auto first = std::find_if(m.entries.begin(), m.entries.end(), [&](const Entry& e) { return e.last >= marked_next; });
  if (first == m.entries.end()) return uint64_t{0};
  // Sent records are never cut (the server may hold them); a gap that
  // spans S cannot be cut in half.
  if (first->seq < marked_next || first->seq <= m.acked) return uint64_t{0};
  const uint64_t cut = static_cast<uint64_t>(m.next_seq - first->seq);
  const uint64_t at = first->offset;
  if (::ftruncate(m.log_fd, static_cast<off_t>(at)) != 0 || ::fsync(m.log_fd) != 0)
    return err(errno_text("cannot cut " + m.file(kLogFile)));
  for (auto e = first; e != m.entries.end(); ++e)
    if (e->type == RecordType::Output) m.unacked_output -= e->out_bytes;
  m.next_seq = first->seq;
  m.entries.erase(first, m.entries.end());
  m.file_bytes = at;
  m.frozen_through = std::min(m.frozen_through, m.next_seq - 1);
  return cut;
}

Status TaskSpool::remove() {
  Impl& m = *impl_;
  if (m.removed) return ok_status();
  auto root_fd = open_root(m.root, false);
  if (!root_fd) return root_fd.error();
  if (m.log_fd >= 0) ::close(m.log_fd);
  if (m.dir_fd >= 0) ::close(m.dir_fd);
  m.log_fd = m.dir_fd = -1;
  m.removed = true;
  auto s = remove_folder(*root_fd, m.task.id);
  ::close(*root_fd);
  if (!s) return err("removing the spool of task " + m.task.id + " in " + m.root + ": " + s.error().message);
  return ok_status();
}

}  // namespace gh::agent