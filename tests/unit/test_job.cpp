// The job parser: both file shapes, every refusal by name and line, and the
// hostile-input guards (types, duplicates, tabs, bytes, sizes, alias bombs,
// nesting). Line:column expectations are exact: they are what an operator
// reads.
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "policy/job.hpp"

using gh::job::parse_job_text;
using gh::job::ParseOutcome;
using gh::job::Step;
using gh::job::When;

namespace {

ParseOutcome parse(const std::string& text, std::optional<std::string> job = std::nullopt) {
  return parse_job_text("config.yml", text, job);
}

// An error at exactly line:col whose message contains `what`.
bool has_error(const ParseOutcome& o, int line, int col, const std::string& what) {
  for (const auto& d : o.diagnostics.all())
    if (d.severity == gh::Severity::Error && d.mark.line == line && d.mark.column == col &&
        d.message.find(what) != std::string::npos)
      return true;
  return false;
}

// An error anywhere whose message contains `what`.
bool has_error(const ParseOutcome& o, const std::string& what) {
  for (const auto& d : o.diagnostics.all())
    if (d.severity == gh::Severity::Error && d.message.find(what) != std::string::npos) return true;
  return false;
}

std::string job_with_steps(const std::string& steps) {
  return "version: 2.1\njobs:\n  build:\n    machine: true\n    steps:\n" + steps;
}

std::string sub(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

// A one-step job with its `machine: true` line (line 4) replaced.
std::string job_with_key(const std::string& line) {
  return sub(job_with_steps("      - checkout\n"), "machine: true", line);
}

// Asserts the text is refused with `what` at line:col, and says what was found.
void refused_at(const std::string& text, int line, int col, const std::string& what) {
  auto o = parse(text);
  CAPTURE(text);
  INFO(o.diagnostics.render());
  CHECK_FALSE(o.job);
  CHECK(has_error(o, line, col, what));
}

}  // namespace

TEST_CASE("a CircleCI config with one job parses with every supported key") {
  const std::string text = R"(version: 2.1
orbs:
  node: circleci/node@5
workflows:
  main:
    jobs: [build]
jobs:
  build:
    description: builds it
    machine:
      image: ubuntu-2204:current
      docker_layer_caching: true
    resource_class: large
    parallelism: 1
    working_directory: ~/src
    shell: /bin/bash -eo pipefail
    environment:
      GOPATH: /home/circleci/go
      COUNT: 3
      EMPTY: ""
    steps:
      - checkout
      - checkout:
          path: sub/dir
          method: blobless
      - run: make
      - run:
          name: Test it
          command: |
            make test
            make lint
          environment:
            - A: "1"
            - B: two
          working_directory: tests
          no_output_timeout: 1h30m
          when: always
          shell: /bin/sh
          background: true
      - run:
          command: "\n  ./first-line.sh --flag  \n  second\n"
          when: on_fail
)";
  auto o = parse(text);
  INFO(o.diagnostics.render());
  REQUIRE(o.job);
  const auto& j = *o.job;
  CHECK(j.name == "build");
  CHECK(j.source_file == "config.yml");
  CHECK(j.working_directory == "~/src");
  CHECK(j.shell == "/bin/bash -eo pipefail");
  CHECK(j.resource_class == "large");
  REQUIRE(j.environment.size() == 3);
  CHECK(j.environment[0] == std::pair<std::string, std::string>{"GOPATH", "/home/circleci/go"});
  CHECK(j.environment[1].second == "3");
  CHECK(j.environment[2].second == "");
  REQUIRE(j.steps.size() == 5);
  CHECK(j.steps[0].kind == Step::Kind::Checkout);
  CHECK(j.steps[0].checkout.path.empty());
  CHECK(j.steps[0].mark.line == 22);
  CHECK(j.steps[0].mark.column == 9);
  CHECK(j.steps[1].checkout.path == "sub/dir");
  CHECK(j.steps[2].kind == Step::Kind::Run);
  CHECK(j.steps[2].run.command == "make");
  CHECK(j.steps[2].run.name == "make");
  CHECK(j.steps[2].run.when == When::OnSuccess);
  CHECK_FALSE(j.steps[2].run.no_output_timeout);  // unset: the profile decides
  CHECK_FALSE(j.steps[2].run.background);
  const auto& r = j.steps[3].run;
  CHECK(r.name == "Test it");
  CHECK(r.command == "make test\nmake lint\n");
  REQUIRE(r.environment.size() == 2);
  CHECK(r.environment[1] == std::pair<std::string, std::string>{"B", "two"});
  CHECK(r.working_directory == "tests");
  CHECK(r.no_output_timeout == std::chrono::seconds(5400));
  CHECK(r.when == When::Always);
  CHECK(r.shell == "/bin/sh");
  CHECK(r.background);
  CHECK(j.steps[4].run.name == "./first-line.sh --flag");
  CHECK(j.steps[4].run.when == When::OnFail);
}

TEST_CASE("defaults: working directory ~/project, no shell, 10 minute no-output timeout") {
  auto o = parse("version: 2\njobs:\n  only:\n    steps:\n      - run: echo hi\n");
  REQUIRE(o.job);
  CHECK(o.job->working_directory == "~/project");
  CHECK(o.job->shell.empty());
  CHECK(o.job->steps[0].run.shell.empty());
  CHECK(o.job->steps[0].run.working_directory.empty());
  CHECK_FALSE(o.job->steps[0].run.no_output_timeout);
}

TEST_CASE("a single-job file (steps at the top) is named after the file") {
  auto o = parse_job_text("ci/lint.yml", "environment:\n  X: y\nsteps:\n  - checkout\n  - run: make lint\n", std::nullopt);
  INFO(o.diagnostics.render());
  REQUIRE(o.job);
  CHECK(o.job->name == "lint");
  CHECK(o.job->steps.size() == 2);
  CHECK(o.available_jobs == std::vector<std::string>{"lint"});

  auto same = parse_job_text("ci/lint.yaml", "steps: [checkout]\n", std::string("lint"));
  CHECK(same.job);
  auto other = parse_job_text("ci/lint.yml", "steps: [checkout]\n", std::string("test"));
  CHECK_FALSE(other.job);
  CHECK(has_error(other, "no job `test`"));
  CHECK(other.available_jobs == std::vector<std::string>{"lint"});
  // A single-job file is a job, not a config: `version` is not one of its keys.
  refused_at("version: 2.1\nsteps: [checkout]\n", 1, 1, "unknown key `version`");
}

TEST_CASE("choosing a job: --job, the only one, or an error listing them") {
  const std::string two = "version: 2.1\njobs:\n  one:\n    steps: [{run: echo one}]\n  two:\n    steps: [{run: echo two}]\n";
  auto amb = parse(two);
  CHECK_FALSE(amb.job);
  CHECK(amb.available_jobs == std::vector<std::string>{"one", "two"});
  CHECK(has_error(amb, 2, 1, "defines 2 jobs; pick one with --job"));
  CHECK(amb.diagnostics.render().find("one, two") != std::string::npos);

  auto missing = parse(two, "three");
  CHECK_FALSE(missing.job);
  CHECK(missing.available_jobs == std::vector<std::string>{"one", "two"});
  CHECK(has_error(missing, 2, 1, "there is no job `three`"));
  CHECK(missing.diagnostics.render().find("one, two") != std::string::npos);

  auto picked = parse(two, "two");
  REQUIRE(picked.job);
  CHECK(picked.job->name == "two");
  CHECK(picked.job->steps[0].run.command == "echo two");

  // Errors in a job not chosen do not stop the chosen one.
  auto other_bad = parse(two + "  three:\n    docker: [{image: x}]\n    steps: [save_cache]\n", "one");
  CHECK(other_bad.job);

  refused_at("version: 2.1\njobs: {}\n", 2, 1, "`jobs:` is empty");
  // Job names are echoed to the operator's terminal: no escape sequences.
  auto esc = parse("version: 2.1\njobs:\n  \"\\e]0;pwned\\a\": {steps: [checkout]}\n  ok: {steps: [checkout]}\n", "ok");
  CHECK_FALSE(esc.job);
  CHECK(has_error(esc, 3, 3, "job name `?]0;pwned?` is not valid"));
  CHECK(esc.available_jobs == std::vector<std::string>{"ok"});
  CHECK(esc.diagnostics.render().find('\x1b') == std::string::npos);
}

TEST_CASE("executors other than this host are refused by name") {
  refused_at("version: 2.1\njobs:\n  build:\n    docker:\n      - image: cimg/base:stable\n    steps:\n      - run: echo hi\n",
             4, 5, "`docker:` executor is refused: Gatehouse is a machine runner");
  refused_at("version: 2.1\njobs:\n  b:\n    macos: {xcode: 15.0.0}\n    steps: [checkout]\n", 4, 5, "`macos:` executor is refused");
  refused_at("version: 2.1\njobs:\n  b:\n    windows: {}\n    steps: [checkout]\n", 4, 5, "`windows:` executor is refused");
  refused_at("version: 2.1\njobs:\n  b:\n    executor: node/default\n    steps: [checkout]\n", 4, 15,
             "Cannot find a definition for executor named node/default");
  refused_at("version: 2.1\njobs:\n  b:\n    circleci_ip_ranges: true\n    steps: [checkout]\n", 4, 5,
             "`circleci_ip_ranges` is refused");
  refused_at("version: 2.1\njobs:\n  b:\n    parallelism: 101\n    steps: [checkout]\n", 4, 18, "`parallelism`");
  auto four = parse("version: 2.1\njobs:\n  b:\n    parallelism: 4\n    steps: [checkout]\n");
  REQUIRE(four.job);
  CHECK(four.job->parallelism == 4);
  refused_at("version: 2.1\njobs:\n  b:\n    parameters: {x: {type: string}}\n    steps: [checkout]\n", 3, 3,
             "Missing required argument(s): x");
  refused_at(job_with_key("machine: false"), 4, 14, "`machine: false`");
  refused_at(job_with_key("machine: {gpu: 1}"), 4, 15,
             "unknown key `gpu` in `machine`");
  CHECK(parse(job_with_key("machine: {enabled: true}")).job);
}

TEST_CASE("steps this runner does not have are refused naming the step and its line") {
  const char* storage[] = {"save_cache", "restore_cache", "persist_to_workspace", "attach_workspace",
                           "store_artifacts", "store_test_results"};
  for (const char* s : storage) {
    const std::string shown = s;
    CAPTURE(shown);
    refused_at(job_with_steps("      - run: echo MUST-NOT-RUN\n      - " + std::string(s) + ":\n          key: k\n"), 7, 9,
               "step `" + std::string(s) + "` is not supported by this runner yet");
  }
  refused_at(job_with_steps("      - add_ssh_keys:\n          fingerprints: [aa]\n"), 6, 9, "step `add_ssh_keys` is refused");
  refused_at(job_with_steps("      - setup_remote_docker\n"), 6, 9, "step `setup_remote_docker` is refused");
  refused_at(job_with_steps("      - deploy:\n          command: x\n"), 6, 9, "step `deploy` is not supported");
  refused_at(job_with_steps("      - node/install-packages\n"), 6, 9,
             "Cannot find a definition for command named node/install-packages (no orb `node` in `orbs:`)");
  refused_at(job_with_steps("      - node/install:\n          node-version: '20'\n"), 6, 9, "no orb `node` in `orbs:`");
  refused_at(job_with_steps("      - frobnicate\n"), 6, 9, "unknown step `frobnicate`");
  // Legacy `- type: shell` steps and misindented run settings.
  refused_at(job_with_steps("      - type: shell\n        command: ls\n"), 6, 9, "a step must be a mapping with one key");
  refused_at(job_with_steps("      - [run]\n"), 6, 9, "a step must be a step name or a mapping");
}

TEST_CASE("references to parameters nobody declared are refused where they are written") {
  refused_at(job_with_steps("      - run: echo << pipeline.parameters.target >>\n"), 6, 19,
             "Unknown variable(s): pipeline.parameters.target");
  refused_at(job_with_steps("      - run:\n          name: x\n          command: |\n            make\n            make <<parameters.x>>\n"),
             10, 18, "Unknown variable(s): parameters.x");
  refused_at(job_with_steps("      - run:\n          command: ls\n          environment:\n            BRANCH: << pipeline.git.brunch >>\n"),
             9, 21, "Unknown variable(s): pipeline.git.brunch");
  // Heredocs and redirections are not parameters.
  auto ok = parse(job_with_steps("      - run: |\n          cat <<EOF >> out.txt\n          a >> b\n          EOF\n"));
  CHECK(ok.job);
}

TEST_CASE("unknown keys are errors at file:line:column listing the allowed keys") {
  const std::string text = R"(version: 2.1
jobs:
  build:
    machine: true
    steps:
      - run:
          command: touch /tmp/MUST-NOT-RUN
          colour: blue
)";
  auto o = parse(text);
  CHECK_FALSE(o.job);
  CHECK(has_error(o, 8, 11, "unknown key `colour` in a `run` step"));
  const std::string shown = o.diagnostics.render();
  CHECK(shown.find("config.yml:8:11: error: unknown key `colour`") != std::string::npos);
  CHECK(shown.find("\n            colour: blue\n") != std::string::npos);
  CHECK(shown.find("\n            ^\n") != std::string::npos);
  CHECK(shown.find("allowed here: name, command, environment, working_directory, no_output_timeout, when, shell, "
                   "background") != std::string::npos);

  refused_at("version: 2.1\njobs:\n  b:\n    stpes: []\n    steps: [checkout]\n", 4, 5, "unknown key `stpes` in job `b`");
  // CircleCI ignores top-level keys it does not know: a warning, not a refusal.
  auto legacy = parse("version: 2.1\nnotify: {webhooks: []}\njobs:\n  b:\n    steps: [checkout]\n");
  CHECK(legacy.job);
  REQUIRE(legacy.diagnostics.all().size() == 1);
  CHECK(legacy.diagnostics.all()[0].severity == gh::Severity::Warning);
  CHECK(legacy.diagnostics.all()[0].mark.line == 2);
  CHECK(legacy.diagnostics.all()[0].message.find("unknown top-level key `notify` is ignored") != std::string::npos);
  refused_at(job_with_steps("      - checkout:\n          depth: 1\n"), 7, 11, "unknown key `depth` in a `checkout` step");
  refused_at(job_with_steps("      - checkout:\n          method: shallow\n"), 7, 19, "checkout `method` `shallow` is not known");

  // Top-level keys that hold anchors are how configs share settings; CircleCI
  // ignores them, and so do we.
  auto anchors = parse("version: 2.1\naliases:\n  - &env\n    A: b\ndefaults: &defaults\n  machine: true\njobs:\n"
                       "  b:\n    <<: *defaults\n    environment: *env\n    steps: [checkout]\n");
  INFO(anchors.diagnostics.render());
  REQUIRE(anchors.job);
  CHECK(anchors.job->environment.size() == 1);
}

TEST_CASE("wrong types are errors saying what was found and what is allowed") {
  refused_at(sub(job_with_steps(""), "    steps:\n", "    steps: checkout\n"), 5, 12, "`steps` must be a list");
  refused_at(sub(job_with_steps(""), "    steps:\n", "    steps:\n"), 5, 5, "found nothing (null)");
  refused_at(job_with_steps("      - run:\n          command: [a, b]\n"), 7, 20, "`command` must be a string, found a list");
  refused_at(job_with_steps("      - run:\n          command: ls\n          background: maybe\n"), 8, 23,
             "`background` must be true or false");
  refused_at(job_with_steps("      - run:\n          command: ls\n          background: \"true\"\n"), 8, 23,
             "must be true or false");
  refused_at(job_with_steps("      - run:\n          command: ls\n          no_output_timeout: ten minutes\n"), 8, 30,
             "is not a duration");
  refused_at(job_with_steps("      - run:\n          command: ls\n          no_output_timeout: 0s\n"), 8, 30, "not a duration from 1s to 24h");
  refused_at(job_with_steps("      - run:\n          command: ls\n          when: sometimes\n"), 8, 17, "`when` `sometimes` is not known");
  refused_at(job_with_steps("      - run: [ls]\n"), 6, 14, "`run` must be a command or a mapping");
  refused_at(job_with_steps("      - run:\n"), 6, 9, "`run` must be a command or a mapping, found nothing");
  refused_at(job_with_steps("      - run:\n          name: x\n"), 6, 9, "has no `command`");
  refused_at(job_with_steps("      - run: \"  \"\n"), 6, 9, "command is empty");
  refused_at(job_with_key("parallelism: two"), 4, 18, "must be a whole number");
  refused_at(job_with_key("environment: [A, B]"), 4, 19,
             "each item of a list `environment:`");
  refused_at(job_with_key("environment: A=b"), 4, 18,
             "`environment` must be a mapping");
  refused_at(job_with_key("environment: {A: }"), 4, 19,
             "environment variable `A` must be a string");
  refused_at(job_with_key("environment: {A: [1]}"), 4, 22, "must be a string");
  refused_at(job_with_key("environment: {1A: x}"), 4, 19,
             "environment variable name `1A` is not valid");
  refused_at(job_with_key("environment: [{A: x}, {A: y}]"), 4, 28,
             "`A` is set twice");
  refused_at(job_with_key("working_directory: ../up"), 4, 24, "goes up through `..`");
  refused_at(job_with_key("working_directory: ~root/x"), 4, 24, "another user's home");
  refused_at(job_with_key("shell: ' '"), 4, 12, "`shell` is empty");
  refused_at("version: 3\njobs:\n  b:\n    steps: [checkout]\n", 1, 10, "version `3` is not supported");
  refused_at("jobs:\n  b:\n    steps: [checkout]\n", 1, 1, "has no `version:`");
  refused_at("version: 2.1\njobs:\n  b:\n    machine: true\n", 3, 3, "job `b` has no `steps:`");
  refused_at("version: 2.1\njobs:\n  b:\n    steps: []\n", 4, 5, "empty `steps:` list");
  refused_at("version: 2.1\njobs:\n  b: [checkout]\n", 3, 6, "job `b` must be a mapping");
  refused_at("- a\n- b\n", 1, 1, "the top level must be a mapping");
  refused_at("name: x\n", 1, 1, "neither `jobs:`");
}

TEST_CASE("strings decoded from escapes are checked too") {
  refused_at(job_with_steps("      - run: \"echo \\0 hi\"\n"), 6, 14, "contains a NUL character");
  refused_at(job_with_steps("      - run:\n          name: \"a\\x1b[2Jb\"\n          command: ls\n"), 7, 17,
             "contains the control character 0x1B");
  // A display name made from a command never carries control characters.
  auto o = parse(job_with_steps("      - run: \"printf '\\e[1m'\\t x\"\n"));
  REQUIRE(o.job);
  CHECK(o.job->steps[0].run.command == "printf '\x1b[1m'\t x");
  CHECK(o.job->steps[0].run.name == "printf ' [1m'  x");
  CHECK(o.job->steps[0].run.name.find('\x1b') == std::string::npos);
}

TEST_CASE("all errors are collected, not only the first") {
  auto o = parse(R"(version: 2.1
jobs:
  b:
    docker: [{image: x}]
    colour: red
    steps:
      - save_cache: {key: k}
      - run:
          command: ls
          when: later
      - node/x
)");
  CHECK_FALSE(o.job);
  CHECK(has_error(o, 4, 5, "docker"));
  CHECK(has_error(o, 5, 5, "unknown key `colour`"));
  CHECK(has_error(o, 7, 9, "save_cache"));
  CHECK(has_error(o, 10, 17, "`when`"));
  CHECK(has_error(o, 11, 9, "no orb `node`"));
  CHECK(o.diagnostics.all().size() == 5);
}

TEST_CASE("duplicate keys are reported at the second occurrence") {
  refused_at(job_with_steps("      - checkout\n    steps:\n      - run: rm -rf /\n"), 7, 5,
             "duplicate key `steps` (first at line 5, column 5)");
  refused_at(job_with_steps("      - run:\n          command: ls\n          command: rm -rf ~\n"), 8, 11, "duplicate key `command`");
  refused_at(job_with_key("environment: {A: 1, A: 2}"), 4, 25,
             "duplicate key `A`");
  // Merge keys may repeat (CircleCI merges them all, earlier first), and a
  // written key wins over a merged one without being a duplicate.
  auto o = parse(R"(version: 2.1
x1: &a {A: from-a, C: c}
x2: &b {A: from-b, B: b}
jobs:
  j:
    environment:
      <<: *a
      <<: *b
      C: own
    steps: [checkout]
)");
  INFO(o.diagnostics.render());
  REQUIRE(o.job);
  const gh::job::EnvList want{{"A", "from-a"}, {"B", "b"}, {"C", "own"}};
  CHECK(o.job->environment == want);
  auto list = parse("version: 2.1\nx: &a {machine: true}\ny: &b {shell: /bin/sh}\njobs:\n  j:\n    <<: [*a, *b]\n    steps: [checkout]\n");
  REQUIRE(list.job);
  CHECK(list.job->shell == "/bin/sh");
  refused_at("version: 2.1\njobs:\n  j:\n    <<: 5\n    steps: [checkout]\n", 4, 9, "a merge key `<<` takes a mapping");
}

TEST_CASE("tabs used for indentation are refused with a clear message") {
  refused_at("version: 2.1\njobs:\n\tbuild:\n    steps: [checkout]\n", 3, 1, "tab character used for indentation");
  refused_at(job_with_steps("      - run: ls\n  \t    - checkout\n"), 7, 3, "tab character used for indentation");
  // Inside a block scalar a tab is text (Makefile recipes, heredocs).
  auto o = parse(job_with_steps("      - run: |\n          cat > Makefile <<'EOF'\n          all:\n          \techo hi\n          EOF\n"
                                "      - run: echo\tdone\n"));
  INFO(o.diagnostics.render());
  REQUIRE(o.job);
  CHECK(o.job->steps[0].run.command.find("\techo hi") != std::string::npos);
}

TEST_CASE("NUL bytes, control characters and invalid UTF-8 are refused at their position") {
  std::string nul = job_with_steps("      - run: echo hi\n");
  nul[nul.rfind("hi")] = '\0';
  refused_at(nul, 6, 19, "NUL byte");
  std::string bad = job_with_steps("      - run: echo h\xC3\x28\n");
  refused_at(bad, 6, 20, "invalid UTF-8");
  refused_at(job_with_steps("      - run: echo \xED\xA0\x80\n"), 6, 19, "invalid UTF-8");  // a surrogate
  refused_at(job_with_steps("      - run: echo \xC0\xAF\n"), 6, 19, "invalid UTF-8");      // overlong '/'
  refused_at(job_with_steps("      - run: echo \x1b[31m\n"), 6, 19, "control character 0x1B");
  refused_at(job_with_steps("      - run: echo \xC2\x9B\n"), 6, 19, "control character U+009B");
  refused_at("version: 2.1\rjobs: {}\n", 1, 13, "carriage return");
  // UTF-8 text and CRLF line ends are fine.
  auto ok = parse("version: 2.1\r\njobs:\r\n  b:\r\n    steps:\r\n      - run: echo \"héllo ✓\"\r\n");
  INFO(ok.diagnostics.render());
  REQUIRE(ok.job);
  CHECK(ok.job->steps[0].run.command == "echo \"héllo ✓\"");
  auto crlf = parse("version: 2.1\r\njobs:\r\n  b:\r\n    colour: red\r\n    steps: [checkout]\r\n");
  CHECK(crlf.diagnostics.render() ==
        "config.yml:4:5: error: unknown key `colour` in job `b`\n      colour: red\n      ^\n"
        "  allowed here: steps, environment, working_directory, shell, machine, resource_class, parallelism, "
        "description, type\n");
}

TEST_CASE("limits: file size, steps, command size, environment entries") {
  std::string big = job_with_steps("      - run: echo\n") + "# " + std::string(gh::job::kMaxJobFileBytes, 'x') + "\n";
  auto o = parse(big);
  CHECK_FALSE(o.job);
  CHECK(has_error(o, 0, 0, "more than the limit of 1024 KiB"));

  std::string steps;
  for (size_t i = 0; i <= gh::job::kMaxSteps; ++i) steps += "      - checkout\n";
  refused_at(job_with_steps(steps), 5, 5, "1001 steps, more than the limit of 1000");
  std::string exactly;
  for (size_t i = 0; i < gh::job::kMaxSteps; ++i) exactly += "      - checkout\n";
  CHECK(parse(job_with_steps(exactly)).job);

  refused_at(job_with_steps("      - run: \"" + std::string(gh::job::kMaxCommandBytes + 1, 'x') + "\"\n"), 6, 9,
             "more than the limit of 262144");
  CHECK(parse(job_with_steps("      - run: \"" + std::string(gh::job::kMaxCommandBytes, 'x') + "\"\n")).job);

  std::string env = "    environment:\n";
  for (size_t i = 0; i <= gh::job::kMaxEnvEntries; ++i) env += "      V" + std::to_string(i) + ": x\n";
  auto e = parse(job_with_steps("      - checkout\n") + env);
  CHECK_FALSE(e.job);
  CHECK(has_error(e, "more than 1000 environment variables"));
}

TEST_CASE("broken YAML is a syntax error at a line") {
  auto t = parse("version: 2.1\njobs:\n  a:\n    steps: [ {run: echo\n");
  CHECK_FALSE(t.job);
  REQUIRE(t.diagnostics.has_errors());
  CHECK(t.diagnostics.all().front().mark.line > 0);
  CHECK(t.diagnostics.all().front().message.find("YAML syntax error") == 0);
  refused_at("version: 2.1\njobs:\n  a:\n    steps: *nowhere\n", 4, 12, "YAML syntax error");
  refused_at("version: 2.1\njobs: {a: {steps: [checkout]}}\n---\nversion: 2\n", 3, 1, "more than one YAML document");
  auto empty = parse("# nothing\n");
  CHECK_FALSE(empty.job);
  CHECK(has_error(empty, "the file is empty"));
  // yaml-cpp would take an unclosed quote at the end of the file as closed.
  refused_at(job_with_steps("      - run:\n          command: \"make && rm -rf build/\n"), 7, 20, "never closed");
  refused_at(job_with_steps("      - run: 'it''s cut\n"), 6, 14, "never closed");
  CHECK(parse(job_with_steps("      - run: 'it''s \"whole\"'\n      - run: \"a \\\" b\"\n")).job);
}

TEST_CASE("an alias bomb is refused fast, not expanded") {
  std::string laughs = "version: 2.1\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    std::string prev(1, static_cast<char>(c - 1));
    laughs += std::string(1, c) + ": &" + c + " [";
    for (int k = 0; k < 9; ++k) laughs += (k ? ",*" : "*") + prev;
    laughs += "]\n";
  }
  laughs += "jobs:\n  j:\n    environment: *i\n    steps: [checkout]\n";
  const auto t0 = std::chrono::steady_clock::now();
  auto o = parse(laughs);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  CHECK_FALSE(o.job);
  CHECK(has_error(o, "alias bomb"));
  CHECK(ms < 1000);

  std::string many = "version: 2.1\nx: &x 1\ny: [";
  for (int i = 0; i < 5001; ++i) many += (i ? ",*x" : "*x");
  many += "]\njobs: {j: {steps: [checkout]}}\n";
  auto m = parse(many);
  CHECK_FALSE(m.job);
  CHECK(has_error(m, 3, 5 + 5000 * 3, "more than 5000 aliases"));
}

TEST_CASE("deep nesting is refused before it can exhaust the stack") {
  auto deep = parse("version: 2.1\nx: " + std::string(100000, '[') + "\njobs: {}\n");
  CHECK_FALSE(deep.job);
  CHECK(has_error(deep, "nested more than 64 levels deep"));
  // The root mapping is level 1, so the 64th bracket is one too many.
  auto exact = parse("version: 2.1\nx: " + std::string(100, '[') + std::string(100, ']') + "\njobs: {}\n");
  CHECK(has_error(exact, 2, 4 + 63, "nested more than 64 levels deep"));
  CHECK(parse("version: 2.1\nx: &deep " + std::string(62, '[') + std::string(62, ']') +
              "\njobs: {j: {steps: [checkout]}}\n").job);
  std::string maps = "version: 2.1\nx:\n";
  for (int i = 1; i <= 70; ++i) maps += std::string(static_cast<size_t>(i) * 2, ' ') + "k:\n";
  auto m = parse(maps);
  CHECK_FALSE(m.job);
  CHECK(has_error(m, "nested more than 64 levels deep"));
  // An alias can make a shallow document deep.
  std::string chain = "version: 2.1\na: &a " + std::string(40, '[') + std::string(40, ']') + "\nb: " +
                      std::string(30, '[') + "*a" + std::string(30, ']') + "\njobs: {}\n";
  CHECK(has_error(parse(chain), "this alias nests the document more than 64 levels deep"));
}

TEST_CASE("reading from disk: missing files, directories, oversized files") {
  auto missing = gh::job::parse_job_file("/nonexistent/config.yml", std::nullopt);
  CHECK_FALSE(missing.job);
  CHECK(has_error(missing, "cannot open the job file /nonexistent/config.yml"));
  auto dir = gh::job::parse_job_file("/", std::nullopt);
  CHECK_FALSE(dir.job);
  CHECK(has_error(dir, "not a regular file"));

  char tmpl[] = "/tmp/gh-test-job-XXXXXX";
  const int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0);
  close(fd);
  {
    std::ofstream f(tmpl);
    f << "version: 2.1\njobs:\n  j:\n    steps:\n      - run: echo from disk\n";
  }
  auto ok = gh::job::parse_job_file(tmpl, std::nullopt);
  INFO(ok.diagnostics.render());
  REQUIRE(ok.job);
  CHECK(ok.job->source_file == tmpl);
  {
    std::ofstream f(tmpl);
    f << std::string(gh::job::kMaxJobFileBytes + 1, '#');
  }
  auto big = gh::job::parse_job_file(tmpl, std::nullopt);
  CHECK_FALSE(big.job);
  CHECK(has_error(big, "more than the limit"));
  std::remove(tmpl);
}

TEST_CASE("mangled input never throws and never yields a job with errors") {
  const std::string base = R"(version: 2.1
x: &d {machine: true}
jobs:
  build:
    <<: *d
    environment: {A: b}
    steps:
      - checkout
      - run: {name: n, command: "make", when: always}
)";
  std::mt19937 rng(12345);
  const std::string alphabet = "-:[]{}&*!|>'\"#\n\t <\\%@`,?0aZ\xff\xc3";
  int parsed = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string t = base;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      const size_t at = rng() % t.size();
      switch (rng() % 3) {
        case 0: t[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: t.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        default: t.erase(at, 1 + rng() % 5); break;
      }
    }
    ParseOutcome o = parse(t, "build");
    CHECK(o.job.has_value() != o.diagnostics.has_errors());
    if (o.job) ++parsed;
    (void)o.diagnostics.render();
  }
  CHECK(parsed > 0);
}

TEST_CASE("refusals of setup_remote_docker and add_ssh_keys say what the policy can and cannot give") {
  auto docker = parse(job_with_steps("      - setup_remote_docker\n"));
  CHECK(has_error(docker, 6, 9, "`docker: {mode: proxy}` gives the job a filtered /var/run/docker.sock"));
  CHECK(docker.diagnostics.render().find("docker: deny") == std::string::npos);  // the profile may grant it
  auto keys = parse(job_with_steps("      - add_ssh_keys\n"));
  CHECK(has_error(keys, 6, 9, "a job gets the secrets its policy profile names"));
  CHECK(keys.diagnostics.render().find("not in this build") == std::string::npos);
}
