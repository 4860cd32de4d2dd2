// `gatehouse run FILE`: parse, admit, prepare, sandbox, supervise, report,
// clean up. The broker stays single-threaded until the sandbox is spawned
// (the child is a fork-like clone of this process).
#include "broker/run_command.hpp"

#include <grp.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>

#include "broker/broker.hpp"
#include "broker/filter_cache.hpp"
#include "broker/job_plan.hpp"
#include "policy/job.hpp"
#include "policy/profile.hpp"
#include "sandbox/cgroup.hpp"
#include "sandbox/landlock.hpp"
#include "sandbox/sandbox.hpp"

extern char** environ;

namespace gh::broker {

namespace {

using Clock = std::chrono::steady_clock;

std::string find_worker(const std::string& configured) {
  if (!configured.empty()) return configured;
  if (const char* env = getenv("GATEHOUSE_WORKER")) return env;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string dir(self, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    for (const std::string& c : {dir + "/gatehouse-worker", dir + "/../libexec/gatehouse/gatehouse-worker"})
      if (access(c.c_str(), X_OK) == 0) return c;
  }
  return "/usr/libexec/gatehouse/gatehouse-worker";
}

int infra(const std::string& what) {
  std::cerr << "gatehouse: infrastructure error: " << what << "\n";
  return kInfra;
}

Status attach_hook(void* ctx, pid_t pid) { return static_cast<sandbox::JobCgroup*>(ctx)->attach(pid); }

void sweep_hook(uint32_t uid, void* ctx) { sweep_uid(*static_cast<const std::string*>(ctx), uid); }

bool job_has_checkout(const job::Job& j) {
  for (const auto& s : j.steps)
    if (s.kind == job::Step::Kind::Checkout) return true;
  return false;
}

// Everything that must be undone at the end, whatever happened.
struct Cleanup {
  const RunOptions& opts;
  std::optional<sandbox::JobCgroup> cgroup;
  std::optional<JobDir> dir;
  ~Cleanup() {
    if (cgroup) cgroup->remove();
    if (!dir) return;
    if (opts.keep) {
      std::cerr << "gatehouse: kept the job's folder " << dir->path << " (--keep)\n";
    } else if (auto s = remove_tree(dir->path); !s) {
      std::cerr << "gatehouse: " << s.error().message << " (it will be swept at the next start)\n";
    }
  }
};

}  // namespace

int run_command(const RunOptions& opts) {
  const auto wall_start = Clock::now();
  const pid_t primer = geteuid() == 0 ? sandbox::prime_cgroup_migration() : -1;
  struct ReapPrimer {
    pid_t pid;
    ~ReapPrimer() { sandbox::reap_primer(pid); }
  } reap_primer{primer};

  // 1. Input: the job file and the policy. Bad input runs nothing.
  auto parsed = job::parse_job_file(opts.file, opts.job);
  if (!parsed.job) {
    std::cerr << parsed.diagnostics.render();
    if (!parsed.available_jobs.empty()) {
      std::cerr << "available jobs:";
      for (auto& j : parsed.available_jobs) std::cerr << " " << j;
      std::cerr << "\n";
    }
    return kBadInput;
  }
  const job::Job& job = *parsed.job;
  policy::Profile profile = policy::builtin_profile();
  if (opts.policy) {
    auto pol = policy::parse_policy_file(*opts.policy, opts.profile);
    if (!pol.profile) {
      std::cerr << pol.diagnostics.render();
      return kBadInput;
    }
    profile = *pol.profile;
  }

  // 2. The broker itself: root in the initial user namespace, no
  // supplementary groups (with setgroups denied in the job's namespace, the
  // job would otherwise keep ours).
  if (geteuid() != 0) return infra("gatehouse run needs root (it maps a host uid for the job and builds its sandbox)");
  if (setgroups(0, nullptr) != 0) return infra(std::string("cannot drop supplementary groups: ") + strerror(errno));

  JobContext ctx;
  ctx.worker_path = find_worker(opts.worker_path);
  if (access(ctx.worker_path.c_str(), X_OK) != 0)
    return infra("the worker binary " + ctx.worker_path + " is missing: reinstall gatehouse or set GATEHOUSE_WORKER");
  for (char** e = environ; *e; ++e) ctx.broker_env.emplace_back(*e);

  // 3. Resources: leftovers swept, a uid, a folder, a cgroup.
  sweep_leftovers(opts.work_root, opts.lock_dir);
  std::string work_root = opts.work_root;
  auto lease = acquire_uid(opts.lock_dir, profile.uid_pool.first, profile.uid_pool.count, sweep_hook, &work_root);
  if (!lease) return infra(lease.error().message);
  ctx.host_uid = lease->uid();

  Cleanup cleanup{opts, std::nullopt, std::nullopt};
  auto dir = create_job_dir(opts.work_root, ctx.host_uid, job.name);
  if (!dir) return infra(dir.error().message);
  cleanup.dir = *dir;
  ctx.dir = *dir;

  if (job_has_checkout(job)) {
    auto co = stage_checkout(opts.file, ctx.dir.checkout, ctx.host_uid, ctx.host_uid);
    if (!co) return infra("checkout: " + co.error().message);
    ctx.checkout = *co;
  }

  auto cg = sandbox::JobCgroup::create("job-" + std::to_string(ctx.host_uid),
                                       {profile.resources.memory_bytes, profile.resources.pids, profile.resources.cpus});
  if (!cg) return infra(cg.error().message);
  cleanup.cgroup = *cg;

  // 4. Compile everything before the fork.
  auto filter = cached_seccomp({}, opts.lock_dir.substr(0, opts.lock_dir.rfind('/')) + "/seccomp");
  if (!filter) return infra("seccomp: " + filter.error().message);
  ctx.seccomp = std::move(*filter);
  auto plan = make_sandbox_plan(job, profile, ctx);
  if (!plan) return infra(plan.error().message);
  WorkerJob wj = make_worker_job(job, profile, ctx);

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return infra(std::string("socketpair: ") + strerror(errno));
  // Bound what one worker message can be, at the socket too.
  int rcvbuf = static_cast<int>(4 * ipc::kMaxWorkerMessageBytes);
  setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

  Reporter rep(STDOUT_FILENO, isatty(STDOUT_FILENO) != 0 && getenv("NO_COLOR") == nullptr);
  const int ll = sandbox::landlock_abi_version();
  rep.job_header(job.name, opts.file, profile.name,
                 cleanup.cgroup->describe() + "; seccomp; " +
                     (ll > 0 ? "landlock ABI " + std::to_string(ll) : std::string("no landlock (the kernel has none)")));

  // 5. Sandbox and supervise.
  sandbox::SpawnHooks hooks{attach_hook, &*cleanup.cgroup};
  auto spawned = sandbox::spawn(*plan, sv[1], hooks);
  close(sv[1]);
  if (!spawned) {
    close(sv[0]);
    return infra(spawned.error().message);
  }
  SessionOutcome out = run_session(sv[0], wj.spec, wj.views, rep, std::chrono::seconds(profile.resources.max_run_time_s));
  close(sv[0]);

  // 6. The job ends as a unit: the worker exits after JobFinished, taking
  // its pid namespace with it; whatever is left in the cgroup is killed. A
  // worker that did not finish cleanly is killed first, not waited for.
  int wstatus = 0;
  if (!out.job_finished || !out.misbehaviour.empty()) cleanup.cgroup->kill_all();
  waitpid(spawned->pid, &wstatus, 0);
  cleanup.cgroup->kill_all();
  uint64_t peak = cleanup.cgroup->peak_memory_bytes();
  uint64_t cpu = cleanup.cgroup->cpu_usec();

  // 7. The verdict, decided here from what the broker checked itself.
  int code = kPassed;
  std::string reason;
  bool step_failed = false;
  for (size_t i = 0; i < out.results.size(); ++i) {
    const auto& r = out.results[i];
    if (wj.spec.steps[i].background) continue;
    if (r.finished && r.outcome != ipc::StepOutcome::NotRun && !(r.outcome == ipc::StepOutcome::Exited && r.code == 0))
      step_failed = true;
  }
  if (!out.misbehaviour.empty()) {
    code = kInfra;
    reason = "the worker misbehaved: " + out.misbehaviour;
  } else if (out.interrupted) {
    code = kInfra;
    reason = "canceled by the operator";
  } else if (out.timed_out) {
    code = kStepFailed;
    reason = "the job exceeded its maximum run time of " + std::to_string(profile.resources.max_run_time_s) + "s";
  } else if (!out.job_finished) {
    code = kInfra;
    reason = "the worker ended before the job finished";
  } else if (step_failed) {
    code = kStepFailed;
  }
  if (cleanup.cgroup->oom_killed()) rep.note("a process of this job was killed for exceeding the memory limit");
  rep.summary(wj.views, out.results, code, reason, peak, cpu,
              std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - wall_start));
  return code;
}

}  // namespace gh::broker
