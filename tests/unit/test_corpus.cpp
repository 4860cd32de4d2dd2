// Real CircleCI configs (tests/../shared/corpus/circleci, see SOURCES.tsv):
// every job in every file either parses or is refused with a reason at a
// line. Most of the corpus targets CircleCI's cloud (docker executors, orbs,
// caches), so refusals are expected; what must never happen is a crash, an
// exception, a hang, or a refusal that does not say why and where.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "policy/job.hpp"

namespace fs = std::filesystem;

namespace {

// One line per kind of refusal, so the summary counts kinds, not jobs' names.
std::string reason_of(const std::string& msg) {
  if (msg.find("orb command") != std::string::npos) return "step is an orb command";
  if (msg.find("custom command") != std::string::npos) return "step is a custom command from `commands:`";
  if (msg.find("uses `<<") != std::string::npos) return "templating `<< ... >>`";
  std::string r = msg.substr(0, std::min(msg.find(": "), msg.find(" (")));
  if (auto p = r.find(" in job `"); p != std::string::npos) r = r.substr(0, p) + " in a job";
  if (r.rfind("environment variable `", 0) == 0) r = "environment variable problem";
  if (r.rfind("`parallelism: ", 0) == 0) r = "`parallelism` other than 1 is refused";
  return r;
}

std::vector<fs::path> corpus_files() {
  std::vector<fs::path> files;
  for (const auto& de : fs::directory_iterator(GH_CORPUS_DIR))
    if (de.is_regular_file() && de.path().extension() == ".yml") files.push_back(de.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

TEST_CASE("corpus: every job parses or is refused with a reason at a line") {
  std::error_code ec;
  if (!fs::is_directory(GH_CORPUS_DIR, ec)) {
    FAIL("the CircleCI corpus is missing: expected *.yml files in " GH_CORPUS_DIR);
    return;
  }
  const auto files = corpus_files();
  REQUIRE_MESSAGE(files.size() >= 20, "expected the 30 corpus configs in " GH_CORPUS_DIR ", found " << files.size());

  int jobs = 0, parsed = 0, refused = 0;
  std::map<std::string, int> reasons;  // kind -> jobs refused for it
  std::vector<std::string> parsed_names;
  const auto start = std::chrono::steady_clock::now();

  for (const auto& f : files) {
    CAPTURE(f.filename().string());
    // Without --job: several jobs is an error that lists them all.
    auto all = gh::job::parse_job_file(f.string(), std::nullopt);
    if (all.available_jobs.empty()) {
      // A file-level refusal (syntax, duplicate keys, no jobs): it too must say where.
      REQUIRE(all.diagnostics.has_errors());
      CHECK(all.diagnostics.all().front().mark.line > 0);
      continue;
    }
    for (const auto& name : all.available_jobs) {
      CAPTURE(name);
      ++jobs;
      auto out = gh::job::parse_job_file(f.string(), name);
      if (out.job) {
        ++parsed;
        parsed_names.push_back(f.filename().string() + ":" + name);
        CHECK_FALSE(out.diagnostics.has_errors());
        CHECK(out.job->name == name);
        CHECK_FALSE(out.job->steps.empty());
        for (const auto& s : out.job->steps)
          if (s.kind == gh::job::Step::Kind::Run) CHECK_FALSE(s.run.name.empty());
        continue;
      }
      ++refused;
      REQUIRE(out.diagnostics.has_errors());
      bool located = false;
      std::set<std::string> kinds;
      for (const auto& d : out.diagnostics.all()) {
        CHECK_FALSE(d.message.empty());
        if (d.severity == gh::Severity::Error && d.mark.line > 0 && !d.message.empty()) located = true;
        kinds.insert(reason_of(d.message));
      }
      CHECK_MESSAGE(located, "no located reason for refusing " << name << ":\n" << out.diagnostics.render());
      // The rendering must show the offending line and a caret.
      const std::string shown = out.diagnostics.render();
      CHECK(shown.find(": error: ") != std::string::npos);
      CHECK(shown.find("^\n") != std::string::npos);
      for (const auto& k : kinds) ++reasons[k];
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::vector<std::pair<int, std::string>> top;
  for (const auto& [k, n] : reasons) top.emplace_back(n, k);
  std::sort(top.begin(), top.end(), [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  std::ostringstream summary;
  summary << "corpus: " << files.size() << " files, " << jobs << " jobs: " << parsed << " parsed, " << refused
          << " refused (" << secs << " s)\n";
  summary << "top refusal reasons (jobs refused for each):\n";
  for (size_t i = 0; i < top.size() && i < 12; ++i) summary << "  " << top[i].first << "  " << top[i].second << "\n";
  summary << "parsed:";
  for (const auto& p : parsed_names) summary << " " << p;
  MESSAGE(summary.str());

  CHECK(jobs == parsed + refused);
  CHECK(jobs > 100);
  // Checked against the corpus (2024 snapshot): nearly every job asks for a
  // docker executor, a named executor, caches, workspaces, artifacts or
  // templated commands. Two machine jobs use none of those (fvcore's
  // gpu_tests, nest's integration_tests) and must keep parsing.
  CHECK(parsed >= 2);
  CHECK(std::find(parsed_names.begin(), parsed_names.end(), "nestjs__nest__config.yml:integration_tests") !=
        parsed_names.end());
  // The docker executor is the most common reason in the wild; it must be
  // among the reasons seen.
  CHECK(reasons.count("`docker:` executor is refused") == 1);
  CHECK(secs < 30.0);
}
