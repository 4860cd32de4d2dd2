// Checkout staging. The `checkout` step of a job run here copies the git
// work tree that holds the job file (tracked files and untracked files git
// does not ignore, never .git itself, which may hold credentials in remote
// URLs), or the file's folder when it is in no work tree. The broker stages
// that copy before the sandbox exists; the step itself then copies it from
// a read-only bind into the working directory, as the job's user.
//
// Root copies nothing itself: a path in the tree is one its owner can
// swap for a link at any moment. gatehouse-checkout reads the tree as its
// owner (tree_owner.cpp says why that uid, and why it cannot be steered)
// and writes the copy as the job's uid; root only starts the two, bounds
// what they say, and waits (with a deadline) for both to agree.
#include "broker/checkout.hpp"

#include "broker/privileges.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <vector>

#include "broker/broker.hpp"
#include "checkout/stream.hpp"
#include "common/unique_fd.hpp"

namespace gh::broker {

namespace {

using Clock = std::chrono::steady_clock;

// Generous: 4 GiB through a pipe takes seconds; a stuck copy must not hold
// the job's uid forever.
constexpr auto kCopyTimeout = std::chrono::minutes(30);
constexpr auto kReadTimeout = std::chrono::minutes(1);  // one job file
constexpr size_t kMaxMessage = 4096;

std::string helper_path() {
  if (const char* env = getenv("GATEHOUSE_CHECKOUT")) return env;
  return find_libexec("gatehouse-checkout", "checkout");
}

// What a helper said, made fit for the operator's terminal: bounded by the
// reader of the pipe, control characters replaced, one line.
std::string shown(std::string s, bool cut) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char& c : s)
    if (c == '\n') c = ' ';
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return cut ? s + "..." : s;
}

// The messages are made before the fork: the child only writes them.
struct DropMessages {
  std::string ids;
  explicit DropMessages(uid_t uid, gid_t gid)
      : ids("cannot switch to uid " + std::to_string(uid) + " and gid " + std::to_string(gid) +
            ": the broker needs CAP_SETUID and CAP_SETGID to copy a checkout\n") {}
};

void drop_privileges_or_die(uid_t uid, gid_t gid, const DropMessages& m) {
  auto die = [](const char* what, size_t n) {
    (void)!write(2, what, n);
    _exit(126);
  };
  if (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) die(m.ids.data(), m.ids.size());
  // As uid 0 (a root-owned tree) the capabilities would survive setresuid:
  // empty them, and no_new_privs keeps execve from granting them back.
  __user_cap_header_struct head{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  static const char caps[] = "cannot drop capabilities\n", nnp[] = "cannot set no_new_privs\n",
                    death[] = "cannot set the parent-death signal\n";
  if (syscall(SYS_capset, &head, data) != 0) die(caps, sizeof caps - 1);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die(nnp, sizeof nnp - 1);
  // Set after the uid change, which clears it.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die(death, sizeof death - 1);
}

void reset_signals() {
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

// Starts gatehouse-checkout MODE DIR as uid/gid with exactly fds 0, 1, 2, in
// its own process group (so a deadline kills whatever it started).
Result<pid_t> spawn_helper(const std::string& bin, const char* mode, const std::string& dir, uid_t uid, gid_t gid, int in,
                           int out, int errfd) {
  std::vector<std::string> args = {bin, mode, dir};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  static char e_path[] = "PATH=/usr/bin:/bin", e_lang[] = "LC_ALL=C";
  char* envp[] = {e_path, e_lang, nullptr};
  const pid_t parent = getpid();
  const DropMessages messages(uid, gid);
  pid_t pid = fork();
  if (pid < 0) return err(std::string("fork: ") + strerror(errno));
  if (pid > 0) {
    setpgid(pid, pid);  // both sides, so a kill of the group never misses it
    return pid;
  }
  setpgid(0, 0);
  // Moved out of 0..2 first: a broker started with a standard fd closed
  // may have been handed one of them for a pipe.
  in = fcntl(in, F_DUPFD, 10);
  out = fcntl(out, F_DUPFD, 10);
  errfd = fcntl(errfd, F_DUPFD, 10);
  if (in < 0 || out < 0 || errfd < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0) _exit(126);
  syscall(SYS_close_range, 3, ~0U, 0);
  reset_signals();
  drop_privileges_or_die(uid, gid, messages);
  if (getppid() != parent) _exit(126);  // the broker died before PDEATHSIG was set
  execve(argv[0], argv.data(), envp);
  static const char msg[] = "cannot start the checkout helper\n";
  (void)!write(2, msg, sizeof msg - 1);
  _exit(127);
}

struct Pipe {
  UniqueFd r, w;
};
Result<Pipe> make_pipe() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return err(std::string("pipe: ") + strerror(errno));
  return Pipe{UniqueFd(p[0]), UniqueFd(p[1])};
}
// The broker's own stream into the writer: a socket, so a writer that
// stopped reading is an EPIPE from send(MSG_NOSIGNAL), never a SIGPIPE.
Result<Pipe> make_socket_pipe() {
  int p[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) != 0) return err(std::string("socketpair: ") + strerror(errno));
  shutdown(p[0], SHUT_WR);
  shutdown(p[1], SHUT_RD);
  return Pipe{UniqueFd(p[0]), UniqueFd(p[1])};
}

// A pipe the broker reads, keeping at most `max` bytes (the rest drained).
struct Sink {
  UniqueFd fd;
  size_t max = kMaxMessage;
  std::string data;
  bool cut = false;
};

struct Child {
  pid_t pid = -1;
  int status = 0;
  bool reaped = false;
  uid_t uid = 0;  // who it runs as: without CAP_KILL only that uid may signal it
  gid_t gid = 0;
};

// Kills a helper and what it started (its process group).
void kill_helper(const Child& c) {
  (void)signal_as(c.uid, c.gid, -c.pid, SIGKILL);
  (void)signal_as(c.uid, c.gid, c.pid, SIGKILL);
}

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

// Feeds `input` (if any) to `input_fd`, collects the sinks until every
// child has exited, kills them all at the deadline. Fails only on timeout.
Status supervise(std::vector<Child*> children, std::vector<Sink*> sinks, UniqueFd input_fd, std::string_view input,
                 std::chrono::minutes timeout) {
  const auto deadline = Clock::now() + timeout;
  char buf[16384];
  for (;;) {
    bool all_reaped = true;
    for (Child* c : children) {
      if (!c->reaped && waitpid(c->pid, &c->status, WNOHANG) == c->pid) c->reaped = true;
      all_reaped = all_reaped && c->reaped;
    }
    std::vector<pollfd> fds;
    for (Sink* s : sinks)
      if (s->fd.get() >= 0) fds.push_back({s->fd.get(), POLLIN, 0});
    if (input_fd.get() >= 0) fds.push_back({input_fd.get(), POLLOUT, 0});
    if (all_reaped && fds.empty()) return ok_status();
    const auto now = Clock::now();
    if (now >= deadline) {
      for (Child* c : children)
        if (!c->reaped) {
          kill_helper(*c);
          waitpid(c->pid, &c->status, 0);
          c->reaped = true;
        }
      return err("it took longer than " + std::to_string(timeout.count()) +
                 " minutes and was stopped; check that the disk it reads is not stuck, or copy a smaller tree");
    }
    // Once every child is gone, only drain what is already in the pipes.
    int wait_ms = all_reaped ? 0 : 50;
    int n = poll(fds.data(), fds.size(), wait_ms);
    if (n < 0 && errno != EINTR) return err(std::string("poll: ") + strerror(errno));
    size_t i = 0;
    for (Sink* s : sinks) {
      if (s->fd.get() < 0) continue;
      const pollfd& p = fds[i++];
      if (all_reaped && p.revents == 0) {
        s->fd = UniqueFd();  // no writer is left; nothing more will come
        continue;
      }
      if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = read(s->fd.get(), buf, sizeof buf);
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (r <= 0) {
        s->fd = UniqueFd();
        continue;
      }
      size_t room = s->max - std::min(s->max, s->data.size());
      s->data.append(buf, std::min(room, static_cast<size_t>(r)));
      if (static_cast<size_t>(r) > room) s->cut = true;
    }
    if (input_fd.get() >= 0 && (fds[i].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = send(input_fd.get(), input.data(), input.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) input.remove_prefix(static_cast<size_t>(w));
      // Done, or the writer stopped reading (its stderr says why).
      if (input.empty() || (w < 0 && errno != EAGAIN && errno != EINTR)) input_fd = UniqueFd();
    }
  }
}

Result<checkout::Summary> parse_summary(const Sink& out) {
  using checkout::kRecordHeaderBytes;
  const std::string& d = out.data;
  if (out.cut || d.size() < kRecordHeaderBytes) return err("the checkout writer's summary is missing or too long");
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(d[at + static_cast<size_t>(i)])) << (8 * i);
    return v;
  };
  if (u32(0) != checkout::kStreamMagic || u32(4) != static_cast<uint32_t>(checkout::RecordType::Summary) ||
      u32(8) != d.size() - kRecordHeaderBytes)
    return err("the checkout writer's summary is malformed");
  auto s = ipc::decode<checkout::Summary>(std::string_view(d).substr(kRecordHeaderBytes));
  if (!s) return err("the checkout writer's summary is malformed: " + s.error().message);
  if (auto c = checkout::check_info(s->info); !c) return c.error();
  return s;
}

bool within(const std::string& top, const std::string& folder) {
  if (top == "/") return folder[0] == '/';
  return folder == top || (folder.size() > top.size() && folder.compare(0, top.size(), top) == 0 && folder[top.size()] == '/');
}

// Root-owned 0700 as promised, then the job's: the writer runs as that uid.
Status hand_staging(const std::string& staging, uid_t uid, gid_t gid) {
  UniqueFd fd(open(staging.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st {};
  if (fd.get() < 0 || fstat(fd.get(), &st) != 0) return err("cannot open the staging folder " + staging + ": " + strerror(errno));
  if (st.st_uid != 0 || (st.st_mode & 07777) != 0700)
    return err("the staging folder " + staging + " is not root's with mode 0700; refusing to use it");
  if (fchown(fd.get(), uid, gid) != 0) return err("cannot hand " + staging + " to the job's uid: " + strerror(errno));
  return ok_status();
}

}  // namespace

Result<CheckoutInfo> stage_checkout(const CheckoutSource& src, const std::string& staging, uid_t job_uid, gid_t job_gid) {
  const std::string bin = helper_path();
  if (access(bin.c_str(), X_OK) != 0)
    return err("the checkout helper " + bin + " is missing: reinstall gatehouse or set GATEHOUSE_CHECKOUT");
  std::optional<TreeOwner> owner;
  if (!src.job_file.empty()) {
    auto o = tree_owner(src.job_file);
    if (!o) return o.error();
    owner = std::move(*o);
  } else if (src.config_bytes.size() > (1u << 20)) {
    return err("the task's job file is larger than 1 MiB");
  }
  if (auto s = hand_staging(staging, job_uid, job_gid); !s) return s.error();

  auto stream = src.job_file.empty() ? make_socket_pipe() : make_pipe();
  auto wout = make_pipe(), werr = make_pipe(), rerr = make_pipe();
  if (!stream || !wout || !werr || !rerr) return err(std::string("pipe: ") + strerror(errno));
  UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (devnull.get() < 0) return err(std::string("open /dev/null: ") + strerror(errno));

  Child reader, writer;
  Sink summary{std::move(wout->r), checkout::max_payload(static_cast<uint32_t>(checkout::RecordType::Summary)) + 64, {}, false};
  Sink writer_says{std::move(werr->r), kMaxMessage, {}, false};
  Sink reader_says{std::move(rerr->r), kMaxMessage, {}, false};
  std::string input;
  UniqueFd input_fd;
  if (owner) {
    auto r = spawn_helper(bin, "read", owner->folder, owner->uid, owner->gid, devnull.get(), stream->w.get(), rerr->w.get());
    if (!r) return r.error();
    reader.pid = *r;
    reader.uid = owner->uid;
    reader.gid = owner->gid;
  } else {
    checkout::Info info{"the task's job file", "", false, "", "", ""};
    const uint64_t size = src.config_bytes.size();
    input = checkout::record(checkout::RecordType::Info, info) +
            checkout::record(checkout::RecordType::File, checkout::File{"config.yml", 0644, size}) + src.config_bytes +
            checkout::record(checkout::RecordType::End, checkout::End{1, size});
    input_fd = std::move(stream->w);
  }
  auto w = spawn_helper(bin, "write", staging, job_uid, job_gid, stream->r.get(), wout->w.get(), werr->w.get());
  if (!w) {
    if (reader.pid > 0) {
      kill_helper(reader);
      waitpid(reader.pid, nullptr, 0);
    }
    return w.error();
  }
  writer.pid = *w;
  writer.uid = job_uid;
  writer.gid = job_gid;
  // Only the children may hold their ends: an end left open here would
  // keep a reader from ever seeing end of file.
  stream->r = UniqueFd();
  stream->w = UniqueFd();
  wout->w = UniqueFd();
  werr->w = UniqueFd();
  rerr->w = UniqueFd();

  std::vector<Child*> children = {&writer};
  std::vector<Sink*> sinks = {&summary, &writer_says};
  if (reader.pid > 0) {
    children.push_back(&reader);
    sinks.push_back(&reader_says);
  }
  if (auto s = supervise(children, sinks, std::move(input_fd), input, kCopyTimeout); !s)
    return err("copying " + (owner ? owner->folder : std::string("the task's job file")) + ": " + s.error().message);

  const std::string what = owner ? owner->folder : std::string("the task's job file");
  // The reader's refusal is the cause when it failed; exit 3 means only
  // that the writer stopped reading, and the writer says why.
  const bool reader_failed = reader.pid > 0 && !(WIFEXITED(reader.status) && (WEXITSTATUS(reader.status) == 0 || WEXITSTATUS(reader.status) == 3));
  if (reader_failed) {
    if (!reader_says.data.empty()) return err(shown(reader_says.data, reader_says.cut));
    return err("copying " + what + ": the checkout reader " + describe_exit(reader.status));
  }
  if (!WIFEXITED(writer.status) || WEXITSTATUS(writer.status) != 0) {
    if (!writer_says.data.empty()) return err(shown(writer_says.data, writer_says.cut));
    return err("copying " + what + ": the checkout writer " + describe_exit(writer.status));
  }
  if (reader.pid > 0 && WEXITSTATUS(reader.status) != 0)
    return err("copying " + what + ": the checkout reader stopped early but the writer did not say why");
  auto sum = parse_summary(summary);
  if (!sum) return sum.error();

  CheckoutInfo info;
  info.git = sum->info.git;
  info.files = static_cast<size_t>(sum->files);
  info.bytes = sum->bytes;
  if (!owner) {
    info.description = "the task's job file";
    return info;
  }
  // What the reader says is what its uid chose to say: it may only name
  // the folder it was given, or a work tree holding it.
  info.source = sum->info.source;
  if (info.git ? !within(info.source, owner->folder) : info.source != owner->folder)
    return err("the checkout reader named `" + info.source + "` as the source of " + owner->folder + "; refusing the copy");
  info.description = (info.git ? "the git work tree " : "the folder ") + info.source;
  if (info.git) {
    info.branch = sum->info.branch;
    info.sha1 = sum->info.sha1;
    info.reponame = sum->info.reponame;
  }
  return info;
}

Result<std::string> read_file_as_owner(const std::string& path, size_t max_bytes) {
  auto owner = tree_owner(path);
  if (!owner) return owner.error();
  const std::string file = (owner->folder == "/" ? "" : owner->folder) + "/" + owner->name;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return err(std::string("pipe: ") + strerror(errno));
  UniqueFd rd(p[0]);
  // Forked, not exec'd, so the child touches only syscalls and buffers
  // made before the fork (safe even if the broker has threads by then).
  // It answers one status byte: 'K' then the bytes, or 'E', a step and an
  // errno.
  std::vector<char> buf(64 * 1024);
  const DropMessages messages(owner->uid, owner->gid);
  pid_t pid = fork();
  if (pid < 0) {
    close(p[1]);
    return err(std::string("fork: ") + strerror(errno));
  }
  if (pid == 0) {
    if (dup2(p[1], 1) < 0) _exit(126);
    close(0);
    syscall(SYS_close_range, 2, ~0U, 0);
    reset_signals();
    drop_privileges_or_die(owner->uid, owner->gid, messages);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    auto fail = [](char step, int e) {
      char msg[1 + 1 + sizeof(int)] = {'E', step};
      memcpy(msg + 2, &e, sizeof e);
      (void)!write(1, msg, sizeof msg);
      _exit(1);
    };
    int dfd = open(owner->folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) fail('d', errno);
    struct stat st {};
    if (fstat(dfd, &st) != 0) fail('d', errno);
    if (st.st_uid != getuid() || st.st_dev != owner->dev || st.st_ino != owner->ino) fail('c', 0);
    int fd = openat(dfd, owner->name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) fail('f', errno);
    if (fstat(fd, &st) != 0) fail('f', errno);
    if (!S_ISREG(st.st_mode)) fail('r', 0);
    (void)!write(1, "K", 1);
    size_t left = max_bytes + 1;  // one more tells "too large"
    while (left > 0) {
      ssize_t n = read(fd, buf.data(), std::min(left, buf.size()));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      if (write(1, buf.data(), static_cast<size_t>(n)) != n) _exit(1);
      left -= static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(p[1]);
  Child child{pid, 0, false};
  Sink answer{std::move(rd), max_bytes + 2 + sizeof(int), {}, false};
  if (auto s = supervise({&child}, {&answer}, UniqueFd(), {}, kReadTimeout); !s) return err("reading " + file + ": " + s.error().message);
  const std::string& a = answer.data;
  const std::string as = " as uid " + std::to_string(owner->uid);
  if (a.size() >= 2 + sizeof(int) && a[0] == 'E') {
    int e = 0;
    memcpy(&e, a.data() + 2, sizeof e);
    switch (a[1]) {
      case 'd': return err("cannot open " + owner->folder + as + ": " + strerror(e));
      case 'c': return err(owner->folder + " changed after it was checked; run again when it is not being moved");
      case 'f': return err("cannot open " + file + as + ": " + (e == ELOOP ? std::string("it became a symbolic link") : strerror(e)));
      case 'r': return err(file + " is not a regular file");
      default: break;
    }
  }
  if (a.empty() || a[0] != 'K' || !WIFEXITED(child.status) || WEXITSTATUS(child.status) != 0)
    return err("cannot read " + file + as + ": the reading process " + describe_exit(child.status) +
               (WIFEXITED(child.status) && WEXITSTATUS(child.status) == 126
                    ? " (it could not switch to that uid: the broker needs CAP_SETUID and CAP_SETGID)"
                    : ""));
  if (a.size() - 1 > max_bytes) return err(file + " is larger than " + std::to_string(max_bytes) + " bytes");
  return a.substr(1);
}

}  // namespace gh::broker
