// `gatehouse-broker run`: parse, admit, prepare, sandbox, supervise,
// report, clean up. Single-threaded until the sandbox is cloned (the child
// is a fork-like clone of this process until it execs gatehouse-sandbox).
//
// Nothing here parses text: the policy and the job arrive typed from the
// parse child (loaders.hpp), and what the client is shown goes out as
// typed events (events.hpp).
#include "broker/job_runner.hpp"

#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "broker/admission.hpp"
#include "broker/audit.hpp"
#include "broker/broker.hpp"
#include "broker/checkout.hpp"
#include "broker/docker_proxy.hpp"
#include "broker/events.hpp"
#include "broker/job_plan.hpp"
#include "broker/loaders.hpp"
#include "broker/runner_lock.hpp"
#include "broker/secrets.hpp"
#include "broker/session.hpp"
#include "protocol/job_signature.hpp"
#include "sandbox/cgroup.hpp"
#include "sandbox/landlock.hpp"
#include "sandbox/sandbox.hpp"

extern char** environ;

namespace gh::broker {

namespace {

using Clock = std::chrono::steady_clock;

std::string find_helper(const char* env_name, const char* name) {
  if (const char* env = getenv(env_name)) return env;
  return find_libexec(name);
}

// Docker `direct`: the host socket at /var/run/docker.sock in the job. The
// job reaches it through the socket's group, lent to the job as a
// supplementary group at clone time (spawn_with_groups): nothing on the
// host changes. This is root on the host; the policy had to say so.
Status plan_docker_direct(const policy::Profile& p, sandbox::SandboxPlan& plan) {
  auto group = docker_socket_group(p.docker.socket, "docker direct");
  if (!group) return group.error();
  plan.binds.push_back({p.docker.socket, "/var/run/docker.sock", true, false});
  plan.supplementary_gids.push_back(*group);
  return ok_status();
}

// The broker holds no supplementary groups (main drops them); the child
// inherits its credentials at clone, and its user namespace denies
// setgroups, so the groups set here are the job's for its whole life.
Result<sandbox::Spawned> spawn_with_groups(const sandbox::SandboxPlan& plan, int fd, const sandbox::SpawnHooks& hooks) {
  if (plan.supplementary_gids.empty()) return sandbox::spawn(plan, fd, hooks);
  std::vector<gid_t> gids(plan.supplementary_gids.begin(), plan.supplementary_gids.end());
  if (setgroups(gids.size(), gids.data()) != 0) return err(std::string("setgroups for the job: ") + strerror(errno));
  auto spawned = sandbox::spawn(plan, fd, hooks);
  if (setgroups(0, nullptr) != 0) _exit(kInfra);  // the broker must not go on holding the docker group
  return spawned;
}

// A cancel that arrived while the job was being prepared: SIGINT/SIGTERM
// are blocked from the start (main), so they wait here, and so does a
// Cancel from the client.
bool cancel_pending(JobEvents& events) {
  if (events.fd() >= 0) {
    pollfd p{events.fd(), POLLIN, 0};
    if (poll(&p, 1, 0) > 0) events.read_client();
  }
  sigset_t pending;
  bool sig = sigpending(&pending) == 0 && (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT));
  if (sig) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    timespec zero{};
    while (sigtimedwait(&set, nullptr, &zero) > 0) {}
  }
  return sig || events.cancel_requested() || events.sink_lost();
}

bool valid_task_id(const std::string& id) { return protocol::task_id_problem(id).empty(); }

Status attach_hook(void* ctx, pid_t pid) { return static_cast<sandbox::JobCgroup*>(ctx)->attach(pid); }

void sweep_hook(uint32_t uid, void* ctx) { sweep_uid(*static_cast<const std::string*>(ctx), uid); }

bool job_has_checkout(const job::Job& j) {
  for (const auto& s : j.steps)
    if (s.kind == job::Step::Kind::Checkout) return true;
  return false;
}

// Everything that must be undone at the end, whatever happened.
struct Cleanup {
  const JobRequest& req;
  JobEvents& events;
  std::optional<sandbox::JobCgroup> cgroup;
  std::optional<JobDir> dir;
  ~Cleanup() {
    if (cgroup) cgroup->remove();
    if (!dir) return;
    if (req.keep) {
      events.note("kept the job's folder " + dir->path + " (--keep)");
    } else if (auto s = remove_tree(dir->path); !s) {
      events.note(s.error().message + " (it will be swept at the next start)");
    }
  }
};

// The job itself; every way out records why in `v` (the Result event).
int run_job(const JobRequest& req, JobEvents& events, RunVerdict& v) {
  const auto wall_start = Clock::now();
  auto infra = [&](const std::string& what) {
    v.reason = what;
    events.diagnostic("gatehouse: infrastructure error: " + what + "\n");
    return int(kInfra);
  };
  if (req.task_id && !valid_task_id(*req.task_id)) {
    v.reason = "--task-id must be 1 to 64 characters from [A-Za-z0-9_-]";
    events.diagnostic("gatehouse: " + v.reason + "\n");
    return kBadInput;
  }
  if (auto why = pipeline_problem(req); !why.empty()) {
    v.reason = why;
    events.diagnostic("gatehouse: " + why + "\n");
    return kBadInput;
  }
  const pid_t primer = sandbox::prime_cgroup_migration();
  struct ReapPrimer {
    pid_t pid;
    ~ReapPrimer() { sandbox::reap_primer(pid); }
  } reap_primer{primer};

  // 1. The policy, typed by the parse child. A policy with errors decides
  // nothing: no audit record.
  auto loaded = load_policy(req.policy);
  if (!loaded) {
    events.diagnostic(loaded.error().diagnostics);
    v.reason = loaded.error().reason;
    return loaded.error().exit_code;
  }
  Admission adm;
  adm.policy = loaded->policy;
  adm.policy_path = loaded->path;
  adm.digest = loaded->digest;

  // 2. The audit log, before any decision: no job runs unaudited.
  const std::string audit_path = req.audit_log.value_or(adm.policy.audit.log);
  auto audit = AuditLog::open(audit_path);
  if (!audit) return infra("audit log: " + audit.error().message + " (no job runs without its audit record)");
  const std::string job_id = new_job_id();
  policy::JobMeta meta = req.meta;
  if (req.check_signature) meta.signed_by.clear();  // only the check below may set it
  auto stamp = [&](nlohmann::json& rec) {
    if (req.task_id) rec["task_id"] = *req.task_id;
  };
  auto refuse = [&](int code, const std::string& reason) {
    v.reason = reason;
    auto rec = job_record("refused", job_id, adm.profile.name == "builtin" && !adm.rule ? nullptr : &adm);
    rec["reason"] = reason;
    rec["exit_code"] = code;
    rec["metadata"] = meta_json(meta);
    stamp(rec);
    if (auto s = audit->append(rec); !s) events.diagnostic("gatehouse: audit log: " + s.error().message + "\n");
    return code;
  };

  // A trigger decides which rule matches: an unknown one is not guessed at.
  if (!meta.trigger.empty() &&
      std::find(std::begin(policy::kTriggers), std::end(policy::kTriggers), meta.trigger) == std::end(policy::kTriggers)) {
    std::string all;
    for (const char* t : policy::kTriggers) all += (all.empty() ? "" : ", ") + std::string(t);
    events.diagnostic("gatehouse: the trigger `" + meta.trigger + "` is none of " + all + "\n");
    return refuse(kBadInput, "unknown trigger `" + meta.trigger + "`");
  }

  // 3. The job's text: the task's, or the file's, read as the owner of its
  // folder (never by root through a path a user may redirect).
  std::string text;
  const std::string display = req.text ? req.display : req.file;
  if (req.text) {
    text = *req.text;
  } else {
    auto read = read_file_as_owner(req.file, job::kMaxJobFileBytes + 1);
    if (!read) {
      events.diagnostic(req.file + ": error: " + read.error().message + "\n");
      return refuse(kBadInput, "the job file " + req.file + " has errors");
    }
    text = std::move(*read);
  }

  // 4. A task's signature, against the policy's trusted keys, before
  // anything of the job is looked at: a refused job is never parsed.
  if (req.check_signature) {
    protocol::JobMetaWire wire{meta.project, meta.branch, meta.tag, meta.trigger, req.revision};
    auto verdict = signature::verify_job(adm.policy.signatures, req.job.value_or(""), text, wire, req.signature);
    if (!verdict) {
      events.diagnostic("gatehouse: refused: " + verdict.error().message + "\n");
      return refuse(kRefused, verdict.error().message);
    }
    meta.signed_by = verdict->key_name;
  }

  // 5. The job, typed by the parse child. Bad input runs nothing.
  auto parsed = load_job(text, display, process_input(req));
  if (!parsed) {
    events.diagnostic(parsed.error().diagnostics);
    return refuse(parsed.error().exit_code, parsed.error().reason);
  }
  const job::Job& job = parsed->job;
  if (meta.job.empty()) meta.job = job.name;
  // A node the job does not have would run with CIRCLE_NODE_INDEX past
  // CIRCLE_NODE_TOTAL, and test splitting would hand it nothing (or all).
  if (req.node_index >= job.parallelism) {
    const std::string why = "--node-index " + std::to_string(req.node_index) + " is not a node of job `" + job.name +
                            "`, which runs " + (job.parallelism == 1 ? std::string("one node (0)")
                            : std::to_string(job.parallelism) + " nodes (0 to " + std::to_string(job.parallelism - 1) + ")");
    events.diagnostic("gatehouse: refused: " + why + "\n");
    return refuse(kBadInput, why);
  }

  // 6. The profile: the first rule that matches, or the operator's --profile.
  if (req.profile) {
    const policy::Profile* p = adm.policy.find(*req.profile);
    if (!p) {
      std::string names;
      for (const auto& p2 : adm.policy.profiles) names += (names.empty() ? "" : ", ") + p2.name;
      events.diagnostic("gatehouse: there is no profile `" + *req.profile + "` in " +
                        (adm.policy_path.empty() ? std::string("the built-in policy") : adm.policy_path) +
                        "; it has: " + names + "\n");
      return refuse(kBadInput, "no profile `" + *req.profile + "`");
    }
    adm.profile = *p;
  } else {
    auto sel = policy::select_profile(adm.policy, meta);
    adm.rule = sel.rule_index;
    adm.profile = *sel.profile;
  }
  const policy::Profile& profile = adm.profile;
  if (auto why = unenforceable(profile); !why.empty()) {
    events.diagnostic("gatehouse: refused: profile `" + profile.name + "` grants " + why +
                      ". Nothing ran. Use a profile without it, or a build that enforces it.\n");
    return refuse(kRefused, why);
  }
  // The machine the job asks for: this host's OS and architecture, and the
  // profile's `machine` lists (admission.hpp).
  if (auto m = machine_refusal(job, adm, text, display)) {
    events.diagnostic(m->diagnostics);
    return refuse(m->exit_code, m->reason);
  }

  // 7. Secrets, read now so a missing or unsafe one refuses the job whole.
  auto secrets = load_secrets(adm.policy.secrets_dir, profile.secrets);
  if (!secrets) {
    events.diagnostic("gatehouse: secrets: " + secrets.error().message + "\n");
    return refuse(kInfra, "secrets: " + secrets.error().message);
  }
  {
    auto rec = job_record("admitted", job_id, &adm);
    rec["metadata"] = meta_json(meta);
    rec["job_file"] = display;
    stamp(rec);
    if (auto s = audit->append(rec); !s) return infra("audit log: " + s.error().message);
  }

  JobContext ctx;
  ctx.job_id = job_id;
  ctx.node_index = req.node_index;
  ctx.revision = req.revision;
  ctx.worker_path = find_helper("GATEHOUSE_WORKER", "gatehouse-worker");
  if (access(ctx.worker_path.c_str(), X_OK) != 0)
    return infra("the worker binary " + ctx.worker_path + " is missing: reinstall gatehouse or set GATEHOUSE_WORKER");
  ctx.entry_path = find_helper("GATEHOUSE_SANDBOX", "gatehouse-sandbox");
  if (access(ctx.entry_path.c_str(), X_OK) != 0)
    return infra("the sandbox entry " + ctx.entry_path + " is missing: reinstall gatehouse or set GATEHOUSE_SANDBOX");
  for (char** e = environ; *e; ++e) ctx.broker_env.emplace_back(*e);
  std::vector<std::pair<std::string, std::string>> mask;
  for (size_t i = 0; i < secrets->size(); ++i) {
    const auto& exp = profile.secrets[i];
    const auto& val = (*secrets)[i];
    mask.emplace_back(val.name, val.value);
    if (exp.as == policy::SecretExposure::As::Env) ctx.secret_env.emplace_back(exp.target, val.value);
  }

  // 8. Resources: leftovers swept, a uid, a folder, a cgroup.
  const auto setup_start = Clock::now();
  if (auto s = check_work_root_mount(req.work_root); !s) return infra(s.error().message);
  sweep_leftovers(req.work_root, req.lock_dir);
  std::string work_root = req.work_root;
  auto slice = slice_uid_pool(profile.uid_pool.first, profile.uid_pool.count, {req.uid_slice_index, req.uid_slice_count});
  if (!slice) return infra("profile `" + profile.name + "`: " + slice.error().message);
  auto lease = acquire_uid(req.lock_dir, slice->first, slice->second, sweep_hook, &work_root);
  if (!lease) return infra(lease.error().message);
  ctx.host_uid = lease->uid();

  Cleanup cleanup{req, events, std::nullopt, std::nullopt};
  auto dir = create_job_dir(req.work_root, ctx.host_uid, job.name);
  if (!dir) return infra(dir.error().message);
  cleanup.dir = *dir;
  ctx.dir = *dir;

  if (job_has_checkout(job)) {
    CheckoutSource src;
    if (req.text) src.config_bytes = text;
    else src.job_file = req.file;
    auto co = stage_checkout(src, ctx.dir.checkout, ctx.host_uid, ctx.host_uid);
    if (!co) return infra("checkout: " + co.error().message);
    ctx.checkout = *co;
  }

  auto cg = sandbox::JobCgroup::create("job-" + std::to_string(ctx.host_uid),
                                       {profile.resources.memory_bytes, profile.resources.pids, profile.resources.cpus});
  if (!cg) return infra(cg.error().message);
  cleanup.cgroup = *cg;

  // 9. Everything compiled and planned before the clone.
  const sandbox::SeccompProgram* filter = loaded->filter_of(profile);
  if (!filter) return infra("seccomp: no compiled filter for profile `" + profile.name + "`");
  ctx.seccomp = *filter;
  auto plan = make_sandbox_plan(job, profile, ctx);
  if (!plan) return infra(plan.error().message);
  plan->host_network = profile.network.mode == policy::NetworkMode::Host;
  if (profile.docker.mode == policy::DockerMode::Direct)
    if (auto s = plan_docker_direct(profile, *plan); !s) return infra(s.error().message);
  // docker `proxy`: started before the sandbox (its socket is one of the
  // job's mounts) and stopped after the job's processes are gone, so no
  // container the job made outlives it.
  std::unique_ptr<DockerProxyProcess> docker_proxy;
  if (profile.docker.mode == policy::DockerMode::Proxy) {
    DockerProxyStart ds;
    ds.profile = &profile;
    ds.job_id = job_id;
    ds.working_directory = resolve_working_directory(job, profile);
    ds.runtime_dir = "/run/gatehouse-docker";  // not under /run/gatehouse (0711): the job's uid must reach its socket
    ds.audit_log = audit->path();
    ds.record = [&adm, &job_id, &stamp](const std::string& event) {
      auto rec = job_record(event, job_id, &adm);
      stamp(rec);
      return rec;
    };
    auto started = DockerProxyProcess::start(ds, *plan);
    if (!started) return infra(started.error().message);
    docker_proxy = std::move(*started);
  }
  for (size_t i = 0; i < secrets->size(); ++i)
    if (profile.secrets[i].as == policy::SecretExposure::As::File)
      plan->secret_files.push_back({profile.secrets[i].target, (*secrets)[i].value});
  WorkerJob wj = make_worker_job(job, profile, ctx);

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return infra(std::string("socketpair: ") + strerror(errno));
  // Bound what one worker message can be, at the socket too.
  int rcvbuf = static_cast<int>(4 * ipc::kMaxWorkerMessageBytes);
  setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

  // The worker masks what the steps print (worker/masker.hpp): root never
  // scans job output (SECURITY.md, "Secrets").
  static_assert(policy::kMaxSecrets <= ipc::kMaxSpecMasks);
  wj.spec.masks = std::move(mask);
  const int ll = sandbox::landlock_abi_version();
  events.job_header(job.name, display,
                    profile.name + (adm.rule ? " (rule " + std::to_string(*adm.rule + 1) + ")" : std::string(" (--profile)")),
                    cleanup.cgroup->describe() + "; seccomp; " +
                        (ll > 0 ? "landlock ABI " + std::to_string(ll) : std::string("no landlock (the kernel has none)")),
                    req.node_index, job.parallelism);

  // 10. Sandbox and supervise, unless the job was canceled meanwhile.
  if (cancel_pending(events)) {
    close(sv[0]);
    close(sv[1]);
    v.canceled = true;
    return infra(events.sink_lost() ? "the stream's reader went away before the job started"
                                    : "canceled before the job started");
  }
  sandbox::SpawnHooks hooks{attach_hook, &*cleanup.cgroup};
  auto spawned = spawn_with_groups(*plan, sv[1], hooks);
  close(sv[1]);
  if (!spawned) {
    close(sv[0]);
    return infra(spawned.error().message);
  }
  events.setup_time(Clock::now() - setup_start);
  {
    auto rec = job_record("sandbox", job_id, &adm);
    rec["sandbox"] = sandbox_json(*plan, profile, cleanup.cgroup->describe(), ll);
    if (auto s = audit->append(rec); !s) {
      cleanup.cgroup->kill_all();
      waitpid(spawned->pid, nullptr, 0);
      close(sv[0]);
      return infra("audit log: " + s.error().message + " (the job was stopped before it ran)");
    }
  }
  SessionOutcome out = run_session(sv[0], wj.spec, wj.views, events, std::chrono::seconds(profile.resources.max_run_time_s));
  close(sv[0]);
  v.canceled = out.interrupted;
  v.timed_out = out.timed_out && !out.interrupted;

  // 11. The job ends as a unit: the worker exits after JobFinished, taking
  // its pid namespace with it; whatever is left in the cgroup is killed. A
  // worker that did not finish cleanly is killed first, not waited for.
  if (!out.job_finished || !out.misbehaviour.empty()) cleanup.cgroup->kill_all();
  waitpid(spawned->pid, nullptr, 0);
  cleanup.cgroup->kill_all();
  const uint64_t peak = cleanup.cgroup->peak_memory_bytes();
  const uint64_t cpu = cleanup.cgroup->cpu_usec();
  std::vector<std::string> docker_left;
  if (docker_proxy) docker_left = docker_proxy->stop();

  // 12. The verdict, decided here from what the broker checked itself.
  auto step_failed_at = [&](size_t i) {
    const auto& r = out.results[i];
    return !wj.spec.steps[i].background && r.finished && r.outcome != ipc::StepOutcome::NotRun &&
           !(r.outcome == ipc::StepOutcome::Exited && r.code == 0);
  };
  int code = kPassed;
  std::string reason;
  bool step_failed = false;
  for (size_t i = 0; i < out.results.size(); ++i) step_failed = step_failed || step_failed_at(i);
  if (out.interrupted) {
    // A worker canceled early may break off mid-protocol; the cancel is the cause.
    code = kInfra;
    reason = events.sink_lost() ? "the stream's reader went away: the job was canceled" : "canceled by the operator";
    if (!out.misbehaviour.empty()) reason += " (then the worker: " + out.misbehaviour + ")";
  } else if (!out.misbehaviour.empty()) {
    code = kInfra;
    reason = "the worker misbehaved: " + out.misbehaviour;
  } else if (out.timed_out) {
    code = kStepFailed;
    reason = "the job exceeded its maximum run time of " + std::to_string(profile.resources.max_run_time_s) + "s";
  } else if (!out.job_finished) {
    code = kInfra;
    reason = "the worker ended before the job finished";
  } else if (step_failed) {
    code = kStepFailed;
  }
  // Denials the broker can see: its own refusals of worker messages and
  // the cgroup's limits biting.
  std::vector<std::string> denials;
  if (!out.misbehaviour.empty()) denials.push_back("worker message refused: " + out.misbehaviour);
  if (cleanup.cgroup->oom_killed()) {
    events.note("a process of this job was killed for exceeding the memory limit");
    denials.push_back("memory limit: a process was killed");
  }
  if (cleanup.cgroup->pids_limit_hit()) denials.push_back("pids limit: fork refused");
  for (const auto& l : docker_left) {
    events.note("docker proxy cleanup: " + l);
    denials.push_back("docker cleanup: " + l);
  }
  for (const auto& d : denials) {
    auto rec = job_record("denial", job_id, &adm);
    rec["denial"] = d;
    if (auto s = audit->append(rec); !s) events.diagnostic("gatehouse: audit log: " + s.error().message + "\n");
  }
  v.reason = reason;
  if (code == kStepFailed && reason.empty())  // the control plane shows it with the result: name the step
    for (size_t i = 0; i < out.results.size() && v.reason.empty(); ++i)
      if (step_failed_at(i))
        v.reason = "step " + std::to_string(i + 1) + " (" + wj.views[i].name +
                   "): " + ipc::describe_step(static_cast<uint32_t>(out.results[i].outcome), out.results[i].code);
  v.peak_memory_bytes = peak;
  v.cpu_usec = cpu;
  events.summary(wj.views, out.results, code, reason, peak, cpu,
                 std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - wall_start),
                 v.canceled ? "canceled" : v.timed_out ? "timed_out" : "killed");
  auto rec = job_record("result", job_id, &adm);
  rec["exit_code"] = code;
  rec["reason"] = reason;
  rec["peak_memory_bytes"] = peak;
  rec["cpu_usec"] = cpu;
  rec["wall_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - wall_start).count();
  stamp(rec);
  if (auto s = audit->append(rec); !s) {
    events.diagnostic("gatehouse: audit log: cannot write the result record: " + s.error().message + "\n");
    v.reason = "the audit log refused the result record: " + s.error().message;
    return kInfra;
  }
  return code;
}

}  // namespace

int run_job_request(const JobRequest& req, int client_fd) {
  const auto start = Clock::now();
  JobEvents events(client_fd);
  RunVerdict v;
  v.exit_code = run_job(req, events, v);
  if (events.sink_lost()) v.canceled = true;
  v.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  events.result(v);
  return v.exit_code;
}

}  // namespace gh::broker
