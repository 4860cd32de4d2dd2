// gatehouse-dispatch: the reference control plane (docs/dispatch.md).
// `serve` answers agents over HTTPS (docs/protocol.md); `init` sets up a
// directory for a first site (dispatch/init.hpp); the other commands work on
// the same SQLite file as a local admin.
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "protocol/protocol.hpp"
#include "dispatch/admin.hpp"
#include "dispatch/api.hpp"
#include "dispatch/https_server.hpp"
#include "dispatch/init.hpp"
#include "dispatch/queue.hpp"

namespace {

using namespace gh::dispatch;
using gh::Result;

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

struct ServeArgs {
  std::string listen = "127.0.0.1:8443";
  std::string cert, key, db, runner_tokens;
  size_t max_request_bytes = gh::protocol::kMaxRequestBytes;
  int lost_after = gh::protocol::kLostAfterSeconds;
};

int serve(const ServeArgs& a) {
  Result<std::vector<RunnerToken>> tokens = load_runner_tokens(a.runner_tokens);
  if (!tokens) {
    std::fprintf(stderr, "gatehouse-dispatch: %s\n", tokens.error().message.c_str());
    return 2;
  }
  {
    Result<Queue> q = Queue::open(a.db, Queue::Mode::Create);  // creates the schema once
    if (!q) {
      std::fprintf(stderr, "gatehouse-dispatch: %s\n", q.error().message.c_str());
      return 2;
    }
  }
  ServerOptions so;
  so.listen = a.listen;
  so.cert_file = a.cert;
  so.key_file = a.key;
  so.max_body_bytes = a.max_request_bytes;
  // Bounds reading the request only; a claim's long poll comes after.
  so.read_timeout_seconds = 30;
  Api api(ApiOptions{a.db, std::move(*tokens), &g_stop});
  Result<std::unique_ptr<HttpsServer>> server =
      HttpsServer::create(so, [&api](const HttpRequest& r) { return api.handle(r); });
  if (!server) {
    std::fprintf(stderr, "gatehouse-dispatch: %s\n", server.error().message.c_str());
    return 2;
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  // The lost sweep: a running task with no heartbeat for --lost-after.
  std::mutex m;
  std::condition_variable cv;
  std::thread sweeper([&] {
    Result<Queue> q = Queue::open(a.db, Queue::Mode::Existing);
    if (!q) {
      std::fprintf(stderr, "gatehouse-dispatch: lost sweep disabled: %s\n", q.error().message.c_str());
      return;
    }
    auto period = std::chrono::seconds(std::clamp(a.lost_after / 4, 1, 15));
    std::unique_lock lock(m);
    while (!g_stop.load()) {
      Result<int> n = q->mark_lost(unix_now() - a.lost_after);
      if (!n)
        std::fprintf(stderr, "gatehouse-dispatch: lost sweep: %s\n", n.error().message.c_str());
      else if (*n > 0)
        std::fprintf(stderr, "gatehouse-dispatch: %d task(s) marked lost (no heartbeat for %d s)\n", *n,
                     a.lost_after);
      cv.wait_for(lock, period, [] { return g_stop.load(); });
    }
  });

  std::fprintf(stderr, "gatehouse-dispatch: listening on https://%s (database %s)\n",
               (*server)->bound_address().c_str(), a.db.c_str());
  (*server)->run(g_stop);
  {
    std::lock_guard lock(m);
    cv.notify_all();
  }
  sweeper.join();
  std::fprintf(stderr, "gatehouse-dispatch: stopped\n");
  if ((*server)->active_connections() > 0) {
    // Connection threads still hold the server; everything answered 200 is
    // committed already, so leave without running destructors under them.
    std::fflush(stderr);
    std::_Exit(0);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  umask(077);  // the database holds job configs and token hashes
  signal(SIGPIPE, SIG_IGN);

  CLI::App app{"gatehouse-dispatch: the reference control plane for gatehouse agents"};
  app.require_subcommand(1);

  InitOptions io;
  auto* init_cmd = app.add_subcommand(
      "init", "make DIR with a CA, a server certificate, a runner token and a matching agent config; print the next commands");
  init_cmd->add_option("dir", io.dir, "the directory to make (it must not exist or be empty)")->required();
  init_cmd->add_option("--name", io.names, "a DNS name of the dispatch for its certificate (repeatable; the first is the agents' URL)")
      ->expected(1)
      ->allow_extra_args(false)
      ->take_all();
  init_cmd->add_option("--address", io.addresses, "an IP address of the dispatch for its certificate (repeatable; the first is where it listens)")
      ->expected(1)
      ->allow_extra_args(false)
      ->take_all();
  init_cmd->add_option("--port", io.port, "the port the dispatch listens on")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  init_cmd->add_option("--runner", io.runner, "the runner's name (default: this host's name)");
  init_cmd->add_option("--resource-class", io.resource_class, "the runner's resource class")->capture_default_str();
  init_cmd->add_flag("--force", io.force, "replace the files init writes in a non-empty DIR");
  init_cmd->footer("Without --name and --address the certificate is for localhost and 127.0.0.1. See docs/dispatch.md.");

  ServeArgs sa;
  auto* serve_cmd = app.add_subcommand("serve", "answer agents over HTTPS (docs/protocol.md)");
  serve_cmd->add_option("--listen", sa.listen, "HOST:PORT to listen on (port 0: any free port)")->capture_default_str();
  serve_cmd->add_option("--cert", sa.cert, "server certificate chain (PEM)")->required();
  serve_cmd->add_option("--key", sa.key, "server private key (PEM)")->required();
  serve_cmd->add_option("--db", sa.db, "the SQLite database (created if missing)")->required();
  serve_cmd->add_option("--runner-tokens", sa.runner_tokens, "file of `NAME TOKEN` lines, mode 600")->required();
  serve_cmd->add_option("--max-request-bytes", sa.max_request_bytes,
                        "largest request body taken; larger ones get 413 too_large and the agent splits its batch")
      ->check(CLI::Range(size_t{131072}, gh::protocol::kMaxRequestBytes))
      ->capture_default_str();
  serve_cmd->add_option("--lost-after", sa.lost_after, "seconds without a heartbeat before a task is lost")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();

  SubmitArgs su;
  auto* submit_cmd = app.add_subcommand("submit", "queue a job; prints the task id");
  submit_cmd->add_option("config", su.config_file, "CircleCI config.yml")->required();
  submit_cmd->add_option("--job", su.job, "the job's name in the config")->required();
  submit_cmd->add_option("--project", su.project, "meta.project");
  submit_cmd->add_option("--branch", su.branch, "meta.branch");
  submit_cmd->add_option("--tag", su.tag, "meta.tag");
  submit_cmd->add_option("--trigger", su.trigger, "meta.trigger (push, pull_request, ...)");
  submit_cmd->add_option("--revision", su.revision, "meta.revision");
  submit_cmd->add_option("--signature", su.signature_file, "JSON file {\"key\": ..., \"ed25519\": ...}");
  submit_cmd->add_option("--db", su.db, "the SQLite database (created if missing)")->required();

  std::string db, id;
  bool follow = false, events = false;
  auto* status_cmd = app.add_subcommand("status", "all tasks as a table, or one task in detail");
  status_cmd->add_option("id", id, "task id");
  status_cmd->add_option("--db", db, "the SQLite database")->required();

  auto* logs_cmd = app.add_subcommand("logs", "a task's output, in order");
  logs_cmd->add_option("id", id, "task id")->required();
  logs_cmd->add_option("--db", db, "the SQLite database")->required();
  logs_cmd->add_flag("--follow,-f", follow, "keep going until the task is completed");
  logs_cmd->add_flag("--events", events, "also show step started/finished lines");

  auto* cancel_cmd = app.add_subcommand("cancel", "cancel a task");
  cancel_cmd->add_option("id", id, "task id")->required();
  cancel_cmd->add_option("--db", db, "the SQLite database")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);
    return 2;
  }

  try {
    if (init_cmd->parsed()) return cmd_init(io);
    if (serve_cmd->parsed()) return serve(sa);
    if (submit_cmd->parsed()) return cmd_submit(su);
    if (status_cmd->parsed()) return cmd_status(db, id);
    if (logs_cmd->parsed()) return cmd_logs(db, id, follow, events);
    if (cancel_cmd->parsed()) return cmd_cancel(db, id);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gatehouse-dispatch: %s\n", e.what());
    return 2;
  }
  return 2;
}
