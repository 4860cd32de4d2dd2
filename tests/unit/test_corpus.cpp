// Real CircleCI configs carried in the repository (tests/corpus/circleci,
// SOURCES.tsv says where each is from, under which licence). Every job in
// every file either parses (processing, then the job parser) or is refused
// with a reason at a line; and what happens to each job is written down in
// tests/corpus/expected.tsv, so a change in either direction fails here: a
// job that used to run and is now refused, or one that used to be refused
// and now runs, is a change someone must look at and write down.
//
// To write the table anew after a deliberate change:
//   GH_CORPUS_WRITE=tests/corpus/expected.tsv build/tests/test_corpus
// and read the diff before committing it.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/orb_folder.hpp"
#include "policy/job.hpp"
#include "policy/machine.hpp"
#include "policy/policy.hpp"
#include "read_file.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kOrbDir = std::string(GH_CORPUS_DIR) + "/../orbs";

// One line per kind of refusal, so the summary counts kinds, not names.
std::string reason_of(const std::string& msg) {
  if (msg.find("Cannot find a definition for command named") != std::string::npos) return "an undefined command";
  if (msg.find("is not in the local orb folder") != std::string::npos) return "an orb not in the local orb folder";
  if (msg.find("Unknown variable(s)") != std::string::npos) return "an unknown << >> variable";
  if (msg.find("Missing required argument(s)") != std::string::npos) return "a job parameter without a value (--job without a workflow)";
  if (msg.find("is refused on this") != std::string::npos || msg.find("this host is") != std::string::npos)
    return msg.substr(0, msg.find(": "));
  std::string r = msg.substr(0, std::min(msg.find(": "), msg.find(" (")));
  if (auto p = r.find(" in job `"); p != std::string::npos) r = r.substr(0, p) + " in a job";
  if (r.rfind("environment variable `", 0) == 0) r = "environment variable problem";
  if (r.rfind("step `", 0) == 0) r = "step " + r.substr(5, r.find('`', 6) - 4) + r.substr(r.find('`', 6) + 1);
  return r;
}

std::vector<fs::path> corpus_files() {
  std::vector<fs::path> files;
  for (const auto& de : fs::directory_iterator(GH_CORPUS_DIR))
    if (de.is_regular_file() && de.path().extension() == ".yml") files.push_back(de.path());
  std::sort(files.begin(), files.end());
  return files;
}

// As the broker does it (broker/loaders.cpp): parse, and when the config
// names orbs, read them from the orb folder and parse again.
gh::job::ParseOutcome parse(const fs::path& f, const std::string& job) {
  gh::job::ProcessInput in;
  in.job_name = job;
  in.orb_directory = kOrbDir;
  in.branch = "main";
  auto out = gh::job::parse_job_file(f.string(), in);
  if (out.needed_orbs.empty()) return out;
  for (const auto& ref : out.needed_orbs) {
    auto path = gh::find_orb_file(kOrbDir, ref);
    REQUIRE_MESSAGE(path.ok(), ref);
    in.orbs.emplace_back(ref, *path ? read_all(**path) : std::string());
  }
  out = gh::job::parse_job_file(f.string(), in);
  CHECK(out.needed_orbs.empty());
  return out;
}

}  // namespace

TEST_CASE("corpus: every job parses or is refused with a reason at a line, as expected.tsv says") {
  std::error_code ec;
  REQUIRE_MESSAGE(fs::is_directory(GH_CORPUS_DIR, ec), "the CircleCI corpus is missing: " GH_CORPUS_DIR);
  const auto files = corpus_files();
  REQUIRE_MESSAGE(files.size() >= 50, "expected at least 50 corpus configs in " GH_CORPUS_DIR ", found " << files.size());

  const gh::policy::Policy builtin = gh::policy::builtin_policy();
  REQUIRE_FALSE(builtin.profiles.empty());
  int jobs = 0, parsed = 0, refused = 0;
  std::map<std::string, int> reasons;  // kind -> jobs refused for it
  std::ostringstream table;            // file \t job \t outcome
  const auto start = std::chrono::steady_clock::now();

  for (const auto& f : files) {
    const std::string name = f.filename().string();
    CAPTURE(name);
    // Without --job: several jobs is an error that lists them all.
    auto all = gh::job::parse_job_file(f.string(), std::nullopt);
    if (all.available_jobs.empty()) {
      // A file-level refusal (syntax, duplicate keys, no jobs): it too must say where.
      REQUIRE(all.diagnostics.has_errors());
      CHECK(all.diagnostics.all().front().mark.line > 0);
      table << name << "\t-\trefused: " << reason_of(all.diagnostics.all().front().message) << "\n";
      continue;
    }
    for (const auto& job : all.available_jobs) {
      CAPTURE(job);
      ++jobs;
      auto out = parse(f, job);
      if (out.job) {
        // As the broker admits it: the image and resource class against the
        // built-in policy on an x86_64 host (fixed, so the table is the same
        // on every machine that runs this test).
        gh::Diagnostics md(f.string(), read_all(f.string()));
        const auto check = gh::policy::check_machine(*out.job, builtin.profiles.front(), "x86_64", "", md);
        if (!check.admitted()) {
          ++refused;
          std::set<std::string> kinds;
          for (const auto& d : md.all()) {
            CHECK(d.mark.line > 0);
            kinds.insert(reason_of(d.message));
          }
          std::string joined;
          for (const auto& k : kinds) {
            ++reasons[k];
            joined += (joined.empty() ? "" : "; ") + k;
          }
          table << name << "\t" << job << "\trefused: " << joined << "\n";
          continue;
        }
        ++parsed;
        CHECK_FALSE(out.diagnostics.has_errors());
        CHECK(out.job->name == job);
        CHECK_FALSE(out.job->steps.empty());
        for (const auto& s : out.job->steps)
          if (s.kind == gh::job::Step::Kind::Run) CHECK_FALSE(s.run.name.empty());
        table << name << "\t" << job << "\truns\n";
        continue;
      }
      ++refused;
      REQUIRE(out.diagnostics.has_errors());
      bool located = false;
      std::set<std::string> kinds;
      for (const auto& d : out.diagnostics.all()) {
        CHECK_FALSE(d.message.empty());
        if (d.severity != gh::Severity::Error) continue;
        if (d.mark.line > 0) located = true;
        kinds.insert(reason_of(d.message));
      }
      CHECK_MESSAGE(located, "no located reason for refusing " << job << ":\n" << out.diagnostics.render());
      const std::string shown = out.diagnostics.render();
      CHECK(shown.find(": error: ") != std::string::npos);
      CHECK(shown.find("^\n") != std::string::npos);
      std::string joined;
      for (const auto& k : kinds) {
        ++reasons[k];
        joined += (joined.empty() ? "" : "; ") + k;
      }
      table << name << "\t" << job << "\trefused: " << joined << "\n";
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::vector<std::pair<int, std::string>> top;
  for (const auto& [k, n] : reasons) top.emplace_back(n, k);
  std::sort(top.begin(), top.end(), [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  std::ostringstream summary;
  summary << "corpus: " << files.size() << " files, " << jobs << " jobs: " << parsed << " parsed, " << refused
          << " refused (" << secs << " s)\nrefusal reasons (jobs refused for each):\n";
  for (const auto& [n, k] : top) summary << "  " << n << "  " << k << "\n";
  MESSAGE(summary.str());

  CHECK(jobs == parsed + refused);
  CHECK(secs < 300.0);  // about 6 s here; a sanitizer build is several times slower

  const std::string expected_path = std::string(GH_CORPUS_DIR) + "/../expected.tsv";
  if (const char* w = std::getenv("GH_CORPUS_WRITE")) {
    std::ofstream(w) << "# file\tjob\toutcome (tests/unit/test_corpus.cpp writes it with GH_CORPUS_WRITE)\n" << table.str();
    return;
  }
  std::map<std::string, std::string> want, got;
  auto load = [](const std::string& text, std::map<std::string, std::string>& into) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#') continue;
      const size_t tab = line.rfind('\t');
      into[line.substr(0, tab)] = line.substr(tab + 1);
    }
  };
  load(read_all(expected_path), want);
  load(table.str(), got);
  REQUIRE_MESSAGE(!want.empty(), "no expectations in " << expected_path);
  for (const auto& [key, outcome] : want) {
    CAPTURE(key);
    auto it = got.find(key);
    CHECK_MESSAGE(it != got.end(), "a job expected.tsv lists is no longer in the corpus");
    if (it != got.end()) CHECK_MESSAGE(it->second == outcome, "was: " << outcome << "\nnow: " << it->second);
  }
  for (const auto& [key, outcome] : got) {
    CAPTURE(key);
    CHECK_MESSAGE(want.count(key) == 1, "a job expected.tsv does not list: " << outcome);
  }
}
