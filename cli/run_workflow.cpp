// `gatehouse run FILE --workflow W`: the workflow's plan from
// `gatehouse-broker plan` (one typed, bounded message, decoded with the
// codec's checks), read before any job runs; then each job in dependency
// order, each node exactly as `gatehouse run FILE --job NAME --workflow W`
// runs it (run_parent.cpp forks its front end). This process stays root to
// start them, and reads nothing of theirs but exit statuses.
//
// A failed job's dependants are skipped, saying why; an approval holds its
// dependants unless --approve names it; jobs the filters left out are
// listed. The exit status is the worst job's (common/exit_status.hpp:
// higher is worse); a workflow held at an approval is not a failure, as on
// CircleCI, and the summary says what did not run.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include "cli/run_parent.hpp"
#include "common/exit_status.hpp"
#include "ipc/broker_messages.hpp"
#include "report/render.hpp"

namespace gh::cli {

namespace {

// At most this many messages from the plan broker: the plan, or a few
// diagnostics and the result.
constexpr int kMaxPlanMessages = 16;

std::unique_ptr<report::Renderer> renderer(const RunOptions& o) {
  if (o.stream_fd >= 0) return std::make_unique<report::StreamRenderer>(o.stream_fd);
  return std::make_unique<report::TerminalRenderer>(STDOUT_FILENO,
                                                    isatty(STDOUT_FILENO) != 0 && getenv("NO_COLOR") == nullptr);
}

int infra(report::Renderer& out, const std::string& reason) {
  out.diagnostic("gatehouse: infrastructure error: " + reason + "\n");
  ipc::ResultEvent r;
  r.exit_code = kInfra;
  r.outcome = "infra_error";
  r.reason = reason;
  out.synthetic_result(r);
  return kInfra;
}

// The plan, or the exit status once the reason was shown.
std::optional<job::WorkflowPlan> fetch_plan(const RunOptions& o, int& code) {
  auto out = renderer(o);
  if (o.stream_fd >= 0 && fcntl(o.stream_fd, F_SETFD, FD_CLOEXEC) != 0) {
    fprintf(stderr, "gatehouse: --stream-fd %d: %s\n", o.stream_fd, strerror(errno));
    code = kBadInput;
    return std::nullopt;
  }
  if (geteuid() != 0) {
    code = infra(*out, "gatehouse run needs root (it maps a host uid for each job and builds its sandbox)");
    return std::nullopt;
  }
  const std::string broker = broker_binary();
  if (access(broker.c_str(), X_OK) != 0) {
    code = infra(*out, "the broker " + broker + " is missing: reinstall gatehouse or set GATEHOUSE_BROKER");
    return std::nullopt;
  }
  std::vector<std::string> args = {broker, "plan", "--client-fd", "3", "--file=" + o.file};
  if (o.policy) args.push_back("--policy=" + *o.policy);
  for (auto& a : pipeline_args(o)) args.push_back(std::move(a));
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    code = infra(*out, std::string("socketpair: ") + strerror(errno));
    return std::nullopt;
  }
  const pid_t pid = start_broker(args, sv[1]);
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    code = infra(*out, std::string("fork: ") + strerror(errno));
    return std::nullopt;
  }
  // Framing before meaning (the reader refuses an unknown type or a length
  // over its bound before the payload is read); then only what a plan run
  // may send: the Plan alone, or Diagnostic and Result.
  ipc::BrokerStreamReader reader;
  std::optional<job::WorkflowPlan> plan;
  std::string broken;
  int messages = 0;
  char buf[65536];
  while (broken.empty()) {
    const ssize_t n = read(sv[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!reader.feed(std::string_view(buf, static_cast<size_t>(n)))) broken = reader.error();
    while (broken.empty()) {
      auto m = reader.next();
      if (!m) break;
      if (++messages > kMaxPlanMessages || plan) {
        broken = "more messages than a plan run sends";
      } else if (m->type == ipc::BrokerMsg::Plan && messages == 1) {
        auto p = ipc::decode<ipc::PlanEvent>(m->payload);
        if (p) plan = std::move(p->plan);
        else broken = "a malformed Plan: " + p.error().message;
      } else if (m->type != ipc::BrokerMsg::Diagnostic && m->type != ipc::BrokerMsg::Result) {
        broken = std::string("a ") + ipc::broker_msg_name(m->type) + " message, which a plan run does not send";
      } else if (!out->event(m->type, m->payload)) {
        broken = std::string("a malformed ") + ipc::broker_msg_name(m->type);
      }
    }
  }
  close(sv[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (!broken.empty()) {
    code = infra(*out, "the broker broke the protocol: " + broken);
    return std::nullopt;
  }
  if (plan) return plan;
  if (out->have_result()) {
    code = out->result().exit_code;
    return std::nullopt;
  }
  code = infra(*out, WIFSIGNALED(status) ? "the broker was killed by signal " + std::to_string(WTERMSIG(status))
                                         : "the broker ended without a plan (exit " + std::to_string(WEXITSTATUS(status)) + ")");
  return std::nullopt;
}

enum class State { NotRun, Passed, Failed, Skipped, Held, Approved };

struct Row {
  std::string name;
  State state = State::NotRun;
  std::string why;  // skipped: the need that stopped it
  NodesOutcome nodes;
};

std::string list(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace

int run_workflow(const RunOptions& o) {
  int code = kPassed;
  auto plan = fetch_plan(o, code);
  if (!plan) return code;
  for (const auto& a : o.approve) {
    const bool known = std::any_of(plan->jobs.begin(), plan->jobs.end(),
                                   [&](const job::WorkflowJob& j) { return j.approval && j.name == a; });
    if (known) continue;
    std::vector<std::string> approvals;
    for (const auto& j : plan->jobs)
      if (j.approval) approvals.push_back(j.name);
    fprintf(stderr, "gatehouse run: --approve %s: workflow %s has no approval job of that name that runs (%s)\n",
            a.c_str(), plan->name.c_str(),
            approvals.empty() ? "it has none" : ("its approvals: " + list(approvals)).c_str());
    return kBadInput;
  }

  parent_say(o, "Workflow " + plan->name + " from " + o.file + ": " + std::to_string(plan->jobs.size()) + " jobs");
  // Left out by their filters, or all of them by the workflow's when/unless:
  // the plan says which, not why, so the line names the pipeline only.
  if (!plan->filtered_out.empty())
    parent_say(o, "filtered out (" +
                      (!o.meta.tag.empty() ? "tag " + o.meta.tag
                       : o.meta.branch.empty() ? std::string("no --branch") : "branch " + o.meta.branch) +
                      "): " + list(plan->filtered_out));
  std::map<std::string, State> states;
  std::vector<Row> rows;
  for (const auto& j : plan->jobs) {
    Row row;
    row.name = j.name;
    // The first requirement that did not pass stops the job.
    for (const auto& n : j.needs) {
      if (parent_canceled()) break;
      const State s = states[n];
      if (s == State::Passed || s == State::Approved) continue;
      row.why = n;
      row.state = State::Skipped;
      const char* what = s == State::Failed ? "failed" : s == State::Held ? "is waiting for approval"
                         : s == State::Skipped ? "was skipped" : "did not run";
      parent_say(o, "skipped: " + j.name + " needs " + n + ", which " + what);
      break;
    }
    if (row.state == State::Skipped) {
    } else if (parent_canceled()) {
      row.state = State::NotRun;
      parent_say(o, "not run: " + j.name + " (canceled)");
    } else if (j.approval) {
      const bool approved = std::find(o.approve.begin(), o.approve.end(), j.name) != o.approve.end();
      row.state = approved ? State::Approved : State::Held;
      parent_say(o, approved ? "approved: " + j.name + " (--approve)"
                             : "held: " + j.name + " is an approval: the jobs that need it do not run (--approve " +
                                   j.name + " runs them)");
    } else {
      parent_say(o, "");
      RunOptions each = o;
      each.job = j.name;
      row.nodes = run_nodes(each, j.parallelism, j.parallelism == 1, o.parallel);
      row.state = row.nodes.exit_code == kPassed && !row.nodes.canceled ? State::Passed : State::Failed;
      code = std::max(code, row.nodes.exit_code);
      if (row.nodes.total > 1) parent_say(o, nodes_line(j.name, row.nodes));
    }
    states[j.name] = row.state;
    rows.push_back(std::move(row));
  }

  // The summary: every job, what became of it, how long it took.
  size_t width = 3;
  for (const auto& r : rows) width = std::max(width, std::min<size_t>(r.name.size(), 48));
  char line[512];
  parent_say(o, "\nWorkflow " + plan->name);
  snprintf(line, sizeof line, "  %-*s  %-5s  %-28s %s", static_cast<int>(width), "job", "nodes", "result", "time");
  parent_say(o, line);
  size_t held = 0, not_run = 0;
  for (const auto& r : rows) {
    std::string result, nodes = "-", time;
    switch (r.state) {
      case State::Passed: result = "passed"; break;
      case State::Failed:
        result = r.nodes.canceled ? "canceled" : result_word(r.nodes.exit_code) + " (exit " + std::to_string(r.nodes.exit_code) + ")";
        break;
      case State::Skipped: result = "skipped (needs " + r.why.substr(0, 40) + ")"; ++not_run; break;
      case State::Held: result = "held for approval"; ++held; break;
      case State::Approved: result = "approved"; break;
      case State::NotRun: result = "not run (canceled)"; ++not_run; break;
    }
    if (r.state == State::Passed || r.state == State::Failed) {
      nodes = r.nodes.ran == r.nodes.total ? std::to_string(r.nodes.total)
                                           : std::to_string(r.nodes.ran) + "/" + std::to_string(r.nodes.total);
      time = format_duration(r.nodes.duration);
    }
    snprintf(line, sizeof line, "  %-*.*s  %-5s  %-28s %s", static_cast<int>(width), static_cast<int>(width),
             r.name.c_str(), nodes.c_str(), result.c_str(), time.c_str());
    std::string text = line;
    text.erase(text.find_last_not_of(' ') + 1);
    parent_say(o, text);
  }
  std::string verdict = code == kPassed ? "PASSED" : code == kStepFailed ? "FAILED" : "ERROR";
  verdict = "  result: " + verdict + " (exit " + std::to_string(code) + ")";
  if (held) verdict += "; held at " + std::to_string(held) + " approval" + (held > 1 ? "s" : "");
  if (not_run) verdict += "; " + std::to_string(not_run) + " job" + (not_run > 1 ? "s" : "") + " did not run";
  parent_say(o, verdict);
  return code;
}

}  // namespace gh::cli
