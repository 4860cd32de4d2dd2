#include "broker/job_plan.hpp"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "sandbox/facilities.hpp"

namespace gh::broker {

namespace {

bool host_exists(const std::string& p) {
  struct stat st {};
  return lstat(p.c_str(), &st) == 0;
}

bool host_is_real_dir(const std::string& p) {
  struct stat st {};
  return lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool host_is_dir(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string join(const std::string& base, const std::string& rel) {
  if (rel.empty() || rel == ".") return base;
  if (rel[0] == '/') return rel;
  if (rel == "~") return base;
  return base.back() == '/' ? base + rel : base + "/" + rel;
}

std::string expand_home(const std::string& path, const std::string& home) {
  if (path == "~") return home;
  if (path.rfind("~/", 0) == 0) return home + path.substr(1);
  return path;
}

std::vector<std::string> split_words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

std::vector<std::string> default_shell() {
  // CircleCI's default; /bin/sh when the host has no bash.
  if (access("/usr/bin/bash", X_OK) == 0 || access("/bin/bash", X_OK) == 0) return {"/bin/bash", "-eo", "pipefail"};
  return {"/bin/sh", "-eo", "pipefail"};
}

// Later entries override earlier ones with the same name.
void set_env(std::vector<std::pair<std::string, std::string>>& env, const std::string& k, const std::string& v) {
  for (auto& [name, value] : env)
    if (name == k) {
      value = v;
      return;
    }
  env.emplace_back(k, v);
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

std::string resolve_working_directory(const job::Job& job, const policy::Profile& p) {
  std::string wd = expand_home(job.working_directory.empty() ? "~/project" : job.working_directory, p.user.home);
  return wd[0] == '/' ? wd : join(p.user.home, wd);
}

Result<sandbox::SandboxPlan> make_sandbox_plan(const job::Job& job, const policy::Profile& p, const JobContext& ctx) {
  sandbox::SandboxPlan plan;
  plan.host_uid = plan.host_gid = ctx.host_uid;
  // root_in_namespace: uid/gid 0 inside, still the one pool uid outside;
  // the policy parser already made the profile's user root, 0, 0.
  plan.root_in_namespace = p.user.root_in_namespace;
  plan.job_uid = p.user.root_in_namespace ? 0 : p.user.uid;
  plan.job_gid = p.user.root_in_namespace ? 0 : p.user.gid;
  plan.overlay_root = p.filesystem.root == policy::RootFs::Overlay;
  plan.overlay_bytes = plan.overlay_root ? p.filesystem.overlay_bytes : 0;
  plan.root_dir = ctx.dir.root;
  plan.home = p.user.home;
  plan.home_bytes = p.filesystem.home_bytes;
  plan.tmp_bytes = p.filesystem.tmp_bytes;
  plan.worker_host_path = ctx.worker_path;
  plan.entry_host_path = ctx.entry_path;

  // Host tools, read-only. On merged-/usr hosts /bin, /lib... are links
  // into /usr and are recreated as links.
  plan.binds.push_back({"/usr", "/usr", false, true});
  for (const char* top : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    struct stat st {};
    if (lstat(top, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t n = readlink(top, buf, sizeof buf - 1);
      if (n > 0) plan.links.emplace_back(top, std::string(buf, static_cast<size_t>(n)));
    } else if (S_ISDIR(st.st_mode)) {
      plan.binds.push_back({top, top, false, true});
    }
  }
  // Overlay mode: the package manager's state, as overlays on the job's
  // own /var (sandbox/overlay.cpp decides what may be an overlay).
  if (plan.overlay_root)
    for (const char* dir : {"/var/lib/dpkg", "/var/lib/apt", "/var/cache/apt", "/var/cache/debconf"})
      if (host_is_real_dir(dir)) plan.binds.push_back({dir, dir, false, true});
  std::string shell = default_shell().front();
  sandbox::plan_etc(plan, {plan.root_in_namespace ? "root" : p.user.name, p.user.home, shell, plan.job_uid,
                           plan.job_gid, plan.hostname});

  const std::string wd = resolve_working_directory(job, p);
  plan.binds.push_back({ctx.dir.workspace, wd, true, true});
  plan.binds.push_back({ctx.dir.checkout, sandbox::kCheckoutPathInJob, false, true});
  plan.binds.push_back({ctx.worker_path, sandbox::kWorkerPathInJob, false, false});
  for (const auto& ro : p.filesystem.read_only) {
    if (!host_exists(ro)) return err("filesystem.read_only: " + ro + " does not exist on this host");
    plan.binds.push_back({ro, ro, false, host_is_dir(ro)});
  }
  for (const auto& rw : p.filesystem.read_write) {
    if (!host_exists(rw)) return err("filesystem.read_write: " + rw + " does not exist on this host");
    plan.binds.push_back({rw, rw, true, host_is_dir(rw)});
  }
  plan.hidden = p.filesystem.hidden;
  // Parents before children, so a bind below another lands on top of it.
  std::stable_sort(plan.binds.begin(), plan.binds.end(),
                   [](const sandbox::Bind& a, const sandbox::Bind& b) { return a.target < b.target; });

  plan.rlimits = {{RLIMIT_CORE, 0, 0},
                  {RLIMIT_NOFILE, p.resources.open_files, p.resources.open_files},
                  {RLIMIT_FSIZE, p.resources.file_size_bytes, p.resources.file_size_bytes}};

  // Landlock mirrors the mount plan: read everywhere the job can see,
  // execute only from tools and its own writable places, write only where
  // the mounts are writable anyway.
  auto& ll = plan.landlock.rules;
  ll.push_back({"/", false, false});
  ll.push_back({"/usr", plan.overlay_root, true});
  // Non-merged-/usr hosts: the real top-level tool directories.
  for (const auto& b : plan.binds)
    if (b.host == b.target && b.target.find('/', 1) == std::string::npos && b.target != "/usr" && b.is_dir &&
        !b.writable && sandbox::is_overlay_tree(b.host))
      ll.push_back({b.target, plan.overlay_root, true});
  if (plan.overlay_root) {
    // The job's own /etc and /var; package maintainer scripts run from
    // /var/lib/dpkg/info. /etc stays without execute.
    ll.push_back({"/etc", true, false});
    ll.push_back({"/var", true, true});
  }
  ll.push_back({"/run/gatehouse", false, true});
  ll.push_back({p.user.home, true, true});
  ll.push_back({wd, true, true});
  ll.push_back({"/tmp", true, true});
  ll.push_back({"/dev", true, false});
  ll.push_back({"/proc", true, false});
  for (const auto& ro : p.filesystem.read_only) ll.push_back({ro, false, true});
  for (const auto& rw : p.filesystem.read_write) ll.push_back({rw, true, true});

  plan.seccomp = ctx.seccomp;
  return plan;
}

WorkerJob make_worker_job(const job::Job& job, const policy::Profile& p, const JobContext& ctx) {
  WorkerJob w;
  const std::string wd = resolve_working_directory(job, p);
  w.spec.scratch_dir = "/tmp/.gatehouse-steps";

  // Environment, lowest precedence first: built-ins, the operator's passed
  // variables, the job's, the step's; the profile's fixed values last, so a
  // job cannot override what the operator set.
  std::vector<std::pair<std::string, std::string>> base = {
      {"PATH", p.user.home + "/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"HOME", p.user.home},
      {"USER", p.user.name},
      {"LOGNAME", p.user.name},
      {"SHELL", default_shell().front()},
      {"LANG", "C.UTF-8"},
      {"CI", "true"},
      {"CIRCLECI", "true"},
      {"CIRCLE_JOB", job.name},
      {"CIRCLE_WORKING_DIRECTORY", job.working_directory.empty() ? "~/project" : job.working_directory},
      {"CIRCLE_NODE_TOTAL", std::to_string(job.parallelism)},
      {"CIRCLE_NODE_INDEX", std::to_string(ctx.node_index)},
  };
  if (!ctx.checkout.branch.empty()) base.emplace_back("CIRCLE_BRANCH", ctx.checkout.branch);
  // The pipeline's revision when the caller named one (a task's commit),
  // else the commit the checked-out tree is at.
  const std::string& sha1 = !ctx.revision.empty() ? ctx.revision : ctx.checkout.sha1;
  if (!sha1.empty()) base.emplace_back("CIRCLE_SHA1", sha1);
  // CircleCI's BASH_ENV: a file in the job's own /tmp that each `run` step's
  // bash reads at its start (bash reads $BASH_ENV when not interactive), so
  // `echo 'export X=1' >> "$BASH_ENV"` in one step sets X in the next.
  // The worker creates it empty, as the job's uid, before the first step.
  if (!ctx.job_id.empty()) {
    w.spec.bash_env = "/tmp/.bash_env-" + ctx.job_id;
    base.emplace_back("BASH_ENV", w.spec.bash_env);
  }
  if (!ctx.checkout.reponame.empty()) base.emplace_back("CIRCLE_PROJECT_REPONAME", ctx.checkout.reponame);
  for (const auto& name : p.environment.pass)
    for (const auto& kv : ctx.broker_env)
      if (kv.rfind(name + "=", 0) == 0) set_env(base, name, kv.substr(name.size() + 1));
  for (const auto& [k, v] : job.environment) set_env(base, k, v);

  for (const auto& st : job.steps) {
    ipc::SpecStep s;
    StepView view;
    auto env = base;
    if (st.kind == job::Step::Kind::Checkout) {
      std::string dest = st.checkout.path.empty() ? wd : join(wd, expand_home(st.checkout.path, p.user.home));
      s.name = view.name = "Checkout code";
      s.command = "mkdir -p " + shell_quote(dest) + "\ncp -R --preserve=mode,timestamps " + sandbox::kCheckoutPathInJob +
                  "/. " + shell_quote(dest) + "\necho " +
                  shell_quote("Copied " + std::to_string(ctx.checkout.files) + " files from " + ctx.checkout.description) +
                  "\n";
      s.argv_prefix = default_shell();
      s.working_directory = wd;
      s.no_output_timeout_s = static_cast<uint32_t>(p.resources.no_output_timeout_s);
    } else {
      const auto& r = st.run;
      s.name = view.name = r.name;
      view.background = r.background;
      s.command = r.command;
      s.argv_prefix = !r.shell.empty() ? split_words(r.shell) : !job.shell.empty() ? split_words(job.shell) : default_shell();
      s.working_directory = r.working_directory.empty() ? wd : join(wd, expand_home(r.working_directory, p.user.home));
      s.no_output_timeout_s = static_cast<uint32_t>(
          r.no_output_timeout ? r.no_output_timeout->count() : static_cast<long>(p.resources.no_output_timeout_s));
      s.when = r.when == job::When::OnSuccess ? 0 : r.when == job::When::OnFail ? 1 : 2;
      s.background = r.background;
      for (const auto& [k, v] : r.environment) set_env(env, k, v);
    }
    for (const auto& [k, v] : p.environment.set) set_env(env, k, v);
    // `deny` removes a name whoever set it (the job, a step, `pass`);
    // the parser refuses a name both set and denied.
    std::erase_if(env, [&](const auto& kv) {
      return std::find(p.environment.deny.begin(), p.environment.deny.end(), kv.first) != p.environment.deny.end();
    });
    for (const auto& [k, v] : ctx.secret_env) set_env(env, k, v);
    if (p.docker.mode != policy::DockerMode::Deny) set_env(env, "DOCKER_HOST", "unix:///var/run/docker.sock");
    for (const auto& [k, v] : env) s.env.push_back(k + "=" + v);
    w.spec.steps.push_back(std::move(s));
    w.views.push_back(view);
  }
  return w;
}

}  // namespace gh::broker
