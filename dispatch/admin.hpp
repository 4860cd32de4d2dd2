// The local admin commands of gatehouse-dispatch: they work on the SQLite
// file directly (SQLite's locking makes that safe next to a running
// server). Each returns the process exit status: 0 done, 1 no such task,
// 2 bad usage or input (including a database that cannot be opened).
#pragma once

#include <string>

namespace gh::dispatch {

struct SubmitArgs {
  std::string config_file;
  std::string job;
  std::string project, branch, tag, trigger, revision;
  std::string signature_file;  // "" for an unsigned job
  std::string db;
};

int cmd_submit(const SubmitArgs& args);
int cmd_status(const std::string& db, const std::string& id);  // id "" lists all
int cmd_logs(const std::string& db, const std::string& id, bool follow, bool events);
int cmd_cancel(const std::string& db, const std::string& id);

}  // namespace gh::dispatch
