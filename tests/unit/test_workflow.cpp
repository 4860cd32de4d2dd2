// Workflows (policy/workflow.hpp): matrix naming as CircleCI forms it,
// aliases, excludes, requires, filters, approvals, and the refusals: cycles,
// unknown requirements, expansion bombs, each at its line.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "ipc/job_codec.hpp"
#include "policy/pipeline_flags.hpp"
#include "policy/workflow.hpp"

using gh::job::ParseOutcome;
using gh::job::ProcessInput;
using gh::job::WorkflowPlan;

namespace {

ProcessInput input(const std::string& workflow, const std::string& branch = "", const std::string& tag = "") {
  ProcessInput in;
  in.workflow = workflow;
  in.branch = branch;
  in.tag = tag;
  return in;
}

ParseOutcome plan(const std::string& text, const ProcessInput& in) {
  return gh::job::plan_workflow_text("config.yml", text, in);
}

// A config with jobs a, b, c, test, deploy (test with parallelism 3) and
// the given workflows: section.
std::string config(const std::string& workflows) {
  return "version: 2.1\n"
         "jobs:\n"
         "  a: {machine: true, steps: [checkout]}\n"
         "  b: {machine: true, steps: [checkout]}\n"
         "  c: {machine: true, steps: [checkout]}\n"
         "  test: {machine: true, parallelism: 3, steps: [checkout]}\n"
         "  deploy: {machine: true, steps: [checkout]}\n"
         "workflows:\n" + workflows;
}

std::vector<std::string> names(const WorkflowPlan& p) {
  std::vector<std::string> out;
  for (const auto& j : p.jobs) out.push_back(j.name);
  return out;
}

const gh::job::WorkflowJob& job(const WorkflowPlan& p, const std::string& name) {
  for (const auto& j : p.jobs)
    if (j.name == name) return j;
  FAIL("no job " << name);
  return p.jobs.front();
}

// The config above with test's `parallelism: 3` (line 6) set to n.
std::string sub_parallelism(const std::string& n) {
  std::string s = config("  w:\n    jobs: [test]\n");
  return s.replace(s.find("parallelism: 3"), 14, "parallelism: " + n);
}

bool has_error(const ParseOutcome& o, int line, int col, const std::string& what) {
  for (const auto& d : o.diagnostics.all())
    if (d.severity == gh::Severity::Error && d.mark.line == line && (col == 0 || d.mark.column == col) &&
        d.message.find(what) != std::string::npos)
      return true;
  return false;
}

// The plan, which must exist (the diagnostics are shown when it does not).
WorkflowPlan ok(const ParseOutcome& o) {
  INFO(o.diagnostics.render());
  REQUIRE(o.plan);
  return *o.plan;
}

void refused_at(const ParseOutcome& o, int line, int col, const std::string& what) {
  INFO(o.diagnostics.render());
  CHECK(!o.plan);
  CHECK(has_error(o, line, col, what));
}

}  // namespace

TEST_CASE("requires orders the jobs; independent ones keep file order") {
  auto p = ok(plan(config("  w:\n"
                          "    jobs:\n"
                          "      - deploy: {requires: [b, a]}\n"
                          "      - b: {requires: [a]}\n"
                          "      - a\n"
                          "      - c\n"),
                   input("w")));
  CHECK(names(p) == std::vector<std::string>{"a", "b", "deploy", "c"});
  CHECK(job(p, "deploy").needs == std::vector<std::string>{"b", "a"});
  CHECK(job(p, "a").needs.empty());
  CHECK(p.name == "w");
}

TEST_CASE("matrix names: values in the order of their parameters' names, the last turning fastest") {
  // CircleCI's own example: `version` written before `platform` still
  // names the jobs build-macos-0.1, build-macos-0.2...
  const std::string text = "version: 2.1\n"
                           "jobs:\n"
                           "  build: {machine: true, steps: [checkout]}\n"
                           "workflows:\n"
                           "  w:\n"
                           "    jobs:\n"
                           "      - build:\n"
                           "          matrix:\n"
                           "            parameters:\n"
                           "              version: [\"0.1\", \"0.2\"]\n"
                           "              platform: [macos, linux]\n";
  auto p = ok(plan(text, input("w")));
  CHECK(names(p) == std::vector<std::string>{"build-macos-0.1", "build-macos-0.2", "build-linux-0.1", "build-linux-0.2"});
}

TEST_CASE("matrix exclude, alias and requires of the whole matrix") {
  const std::string wf = "  w:\n"
                         "    jobs:\n"
                         "      - test:\n"
                         "          matrix:\n"
                         "            alias: all-tests\n"
                         "            parameters:\n"
                         "              a: [1, 2]\n"
                         "              b: [x, y]\n"
                         "            exclude:\n"
                         "              - {a: 2, b: y}\n"
                         "      - deploy: {requires: [all-tests]}\n";
  auto p = ok(plan(config(wf), input("w")));
  CHECK(names(p) == std::vector<std::string>{"test-1-x", "test-1-y", "test-2-x", "deploy"});
  CHECK(job(p, "deploy").needs == std::vector<std::string>{"test-1-x", "test-1-y", "test-2-x"});
  CHECK(job(p, "test-2-x").parallelism == 3);  // the job's literal parallelism

  // The alias defaults to the job's name.
  auto q = ok(plan(config("  w:\n    jobs:\n      - a: {matrix: {parameters: {v: [\"3.11\", \"3.12\"]}}}\n"
                          "      - b: {requires: [a]}\n"),
                   input("w")));
  CHECK(names(q) == std::vector<std::string>{"a-3.11", "a-3.12", "b"});
  CHECK(job(q, "b").needs == std::vector<std::string>{"a-3.11", "a-3.12"});
}

TEST_CASE("<< matrix.x >> in name, requires and arguments") {
  const std::string text = config("  w:\n"
                                  "    jobs:\n"
                                  "      - a:\n"
                                  "          name: build-v<< matrix.version >>\n"
                                  "          matrix: {parameters: {version: [\"0.1\", \"0.2\"]}}\n"
                                  "      - b:\n"
                                  "          name: deploy-v<< matrix.version >>\n"
                                  "          label: on << matrix.version >>\n"
                                  "          exact: << matrix.version >>\n"
                                  "          requires: [build-v<< matrix.version >>]\n"
                                  "          matrix: {parameters: {version: [\"0.1\", \"0.2\"]}}\n");
  auto p = ok(plan(text, input("w")));
  CHECK(names(p) == std::vector<std::string>{"build-v0.1", "build-v0.2", "deploy-v0.1", "deploy-v0.2"});
  CHECK(job(p, "deploy-v0.2").needs == std::vector<std::string>{"build-v0.2"});

  // The arguments, as the job processor will get them.
  gh::Diagnostics d("config.yml");
  auto root = YAML::Load(text);
  auto wf = gh::job::workflow::read(root["workflows"], "w", input("w"), d);
  INFO(d.render());
  REQUIRE(wf);
  const auto& inv = wf->jobs[3];
  CHECK(inv.name == "deploy-v0.2");
  CHECK(inv.job == "b");
  REQUIRE(inv.arguments.size() == 3);
  CHECK(inv.arguments[0].key == "label");
  CHECK(inv.arguments[0].value.Scalar() == "on 0.2");
  CHECK(inv.arguments[1].key == "exact");
  CHECK(inv.arguments[1].value.Scalar() == "0.2");
  CHECK(gh::yaml::to_mark(inv.arguments[1].value.Mark()).line == 19);  // the matrix value's own node, its line kept
  CHECK(inv.arguments[2].key == "version");
  CHECK(inv.arguments[2].value.Scalar() == "0.2");

  refused_at(plan(config("  w:\n    jobs:\n      - a: {name: x-<< matrix.nope >>, matrix: {parameters: {v: [1]}}}\n"),
                  input("w")), 11, 0, "`<< matrix.nope >>` names no parameter of this matrix");
  refused_at(plan(config("  w:\n    jobs:\n      - a: {name: x-<< matrix.v >>}\n"), input("w")), 11, 0,
             "outside a matrix");
}

TEST_CASE("pre-steps and post-steps are kept for the job processor") {
  const std::string text = config("  w:\n"
                                  "    jobs:\n"
                                  "      - a:\n"
                                  "          pre-steps: [{run: echo << matrix.v >>}]\n"
                                  "          post-steps: [{run: echo after}]\n"
                                  "          matrix: {parameters: {v: [one]}}\n");
  gh::Diagnostics d("config.yml");
  auto root = YAML::Load(text);
  auto wf = gh::job::workflow::read(root["workflows"], "w", input("w"), d);
  REQUIRE(wf);
  CHECK(wf->jobs[0].pre_steps[0]["run"].Scalar() == "echo one");
  CHECK(wf->jobs[0].post_steps[0]["run"].Scalar() == "echo after");
  CHECK(gh::yaml::to_mark(wf->jobs[0].post_steps[0]["run"].Mark()).line == 13);
}

TEST_CASE("filters: branches and tags, only and ignore, names and regexes") {
  const std::string wf = "  w:\n"
                         "    jobs:\n"
                         "      - a\n"
                         "      - b: {filters: {branches: {only: [main, /release\\/.*/]}}}\n"
                         "      - c: {filters: {branches: {ignore: /feature-.*/}}}\n"
                         "      - deploy: {filters: {tags: {only: \"/^v[0-9]+$/\"}, branches: {ignore: \"/.*/\"}}}\n";
  auto on = [&](const std::string& branch, const std::string& tag = "") {
    return ok(plan(config(wf), input("w", branch, tag)));
  };
  auto main = on("main");
  CHECK(names(main) == std::vector<std::string>{"a", "b", "c"});
  CHECK(main.filtered_out == std::vector<std::string>{"deploy"});
  CHECK(names(on("release/1.2")) == std::vector<std::string>{"a", "b", "c"});
  CHECK(names(on("release")) == std::vector<std::string>{"a", "c"});       // the regex matches the whole name
  CHECK(names(on("feature-x")) == std::vector<std::string>{"a"});
  CHECK(names(on("")) == std::vector<std::string>{"a", "c"});              // no --branch: `only` matches nothing
  // A tag's pipeline runs only jobs whose tag filter says so.
  auto tag = on("", "v12");
  CHECK(names(tag) == std::vector<std::string>{"deploy"});
  CHECK(tag.filtered_out == std::vector<std::string>{"a", "b", "c"});
  CHECK(names(on("", "v1.2")).empty());

  refused_at(plan(config("  w:\n    jobs:\n      - a: {filters: {branches: {only: /(/}}}\n"), input("w")), 11, 0,
             "not a regular expression this runner can read");
  refused_at(plan(config("  w:\n    jobs:\n      - a: {filters: \"pipeline.git.branch == 'main'\"}\n"), input("w")),
             11, 0, "expression `filters` are not supported");
  refused_at(plan(config("  w:\n    jobs:\n      - a: {filters: {branch: {only: main}}}\n"), input("w")), 11, 0,
             "unknown key `branch` in `filters`");
}

TEST_CASE("a filtered-out requirement is dropped; a job whose every requirement is filtered out is too") {
  const std::string wf = "  w:\n"
                         "    jobs:\n"
                         "      - a: {filters: {branches: {only: main}}}\n"
                         "      - b\n"
                         "      - c: {requires: [a, b]}\n"
                         "      - deploy: {requires: [a]}\n"
                         "      - test: {requires: [deploy]}\n";
  auto p = ok(plan(config(wf), input("w", "dev")));
  CHECK(names(p) == std::vector<std::string>{"b", "c"});
  CHECK(job(p, "c").needs == std::vector<std::string>{"b"});
  CHECK(p.filtered_out == std::vector<std::string>{"a", "deploy", "test"});
}

TEST_CASE("approval jobs: no job definition needed, dependants wait on them") {
  auto p = ok(plan(config("  w:\n"
                          "    jobs:\n"
                          "      - a\n"
                          "      - hold: {type: approval, requires: [a]}\n"
                          "      - deploy: {requires: [hold]}\n"),
                   input("w")));
  CHECK(names(p) == std::vector<std::string>{"a", "hold", "deploy"});
  CHECK(job(p, "hold").approval);
  CHECK(!job(p, "deploy").approval);
  CHECK(job(p, "deploy").needs == std::vector<std::string>{"hold"});
  refused_at(plan(config("  w:\n    jobs:\n      - hold: {type: approval, foo: 1}\n"), input("w")), 11, 9,
             "runs no job: it takes no parameters");
  refused_at(plan(config("  w:\n    jobs:\n      - a: {type: build}\n"), input("w")), 11, 0, "job type `build` is not known");

  // Encoded for the broker and back, the approval survives the codec.
  gh::ipc::Encoder e;
  gh::ipc::fields(e, p);
  const std::string bytes = e.take();
  gh::ipc::Decoder dec(bytes);
  WorkflowPlan back;
  gh::ipc::fields(dec, back);
  INFO(dec.error());
  REQUIRE(dec.finish());
  CHECK(back.jobs[1].approval);
}

TEST_CASE("requires naming no job, or a name several jobs share, is an error at its line") {
  refused_at(plan(config("  w:\n"
                         "    jobs:\n"
                         "      - a\n"
                         "      - b:\n"
                         "          requires:\n"
                         "            - a\n"
                         "            - nope\n"),
                  input("w")),
             15, 15, "job `b` requires `nope`, which is not a job in workflow `w`");
  // The same job twice: numbered as CircleCI numbers them, and a bare
  // requirement of the shared name is ambiguous.
  auto twice = ok(plan(config("  w:\n    jobs:\n      - a\n      - a\n      - b: {requires: [a-2]}\n"), input("w")));
  CHECK(names(twice) == std::vector<std::string>{"a-1", "a-2", "b"});
  refused_at(plan(config("  w:\n    jobs:\n      - a\n      - a\n      - b: {requires: [a]}\n"), input("w")), 13, 0,
             "which is the name of 2 other jobs in workflow `w`");
  refused_at(plan(config("  w:\n    jobs:\n      - nosuch\n"), input("w")), 11, 9,
             "workflow `w` runs job `nosuch`, which `jobs:` does not define");
  refused_at(plan(config("  w:\n    jobs:\n      - a: {requires: [{b: failed}]}\n      - b\n"), input("w")), 11, 0,
             "a requirement with a status");
}

TEST_CASE("a cycle is refused, naming it") {
  auto o = plan(config("  w:\n"
                       "    jobs:\n"
                       "      - c\n"
                       "      - a: {requires: [b]}\n"
                       "      - b: {requires: [deploy]}\n"
                       "      - deploy: {requires: [a]}\n"),
                input("w"));
  INFO(o.diagnostics.render());
  CHECK(!o.plan);
  bool named = false;
  for (const auto& d : o.diagnostics.all())
    named = named || d.message.find("require each other in a cycle: `a` requires `b` requires `deploy` requires `a`") !=
                         std::string::npos;
  CHECK(named);
  refused_at(plan(config("  w:\n    jobs:\n      - a: {requires: [a]}\n"), input("w")), 11, 9, "`a` requires `a`");
}

TEST_CASE("an expansion bomb is refused at its line, before it is expanded") {
  std::string vals = "[";
  for (int i = 0; i < 40; ++i) vals += (i ? "," : "") + std::to_string(i);
  vals += "]";
  refused_at(plan(config("  w:\n"
                         "    jobs:\n"
                         "      - a\n"
                         "      - b:\n"
                         "          matrix:\n"
                         "            parameters: {x: " + vals + ", y: " + vals + ", z: " + vals + "}\n"),
                  input("w")),
             13, 11, "this matrix expands to more than 1000 jobs");
  // Several matrices that together pass the limit: refused at the one that does.
  std::string wf = "  w:\n    jobs:\n";
  for (int m = 0; m < 3; ++m)
    wf += "      - a: {name: m" + std::to_string(m) + "-<< matrix.x >>-<< matrix.y >>, matrix: {parameters: {x: " + vals +
          ", y: [1,2,3,4,5,6,7,8,9,10,11,12,13]}}}\n";  // 520 each
  auto o = plan(config(wf), input("w"));
  INFO(o.diagnostics.render());
  CHECK(!o.plan);
  CHECK(has_error(o, 12, 9, "has more than 1000 jobs with this one"));
}

TEST_CASE("workflow-level keys: when/unless decided, triggers warned, unknown keys refused") {
  const std::string text = "parameters:\n  nightly: {type: boolean, default: true}\n" + config("  nightly:\n"
                                  "    when: << pipeline.parameters.nightly >>\n"
                                  "    triggers: [{schedule: {cron: \"0 0 * * *\", filters: {branches: {only: main}}}}]\n"
                                  "    jobs: [a]\n"
                                  "  version: 2\n");
  auto o = plan(text, input("nightly"));
  CHECK(ok(o).jobs.size() == 1);
  // `when` false: the workflow runs nothing, and says which jobs it left out.
  auto off = input("nightly");
  off.parameters = {{"nightly", "false"}};
  auto skipped = plan(text, off);
  CHECK(ok(skipped).jobs.empty());
  CHECK(ok(skipped).filtered_out == std::vector<std::string>{"a"});
  bool warned = false;
  for (const auto& d : o.diagnostics.all())
    warned = warned || (d.severity == gh::Severity::Warning && d.message.find("`triggers` is ignored") != std::string::npos);
  CHECK(warned);
  gh::Diagnostics d("config.yml");
  auto root = YAML::Load(text);
  CHECK(gh::job::workflow::names(root["workflows"], d) == std::vector<std::string>{"nightly"});
  auto wf = gh::job::workflow::read(root["workflows"], "nightly", input("nightly"), d);
  REQUIRE(wf);
  REQUIRE(wf->when);
  CHECK(wf->when->value.Scalar() == "<< pipeline.parameters.nightly >>");

  refused_at(plan(text, input("version")), 11, 0, "there is no workflow `version`");
  refused_at(plan(text, input("other")), 11, 0, "there is no workflow `other` in this file");
  refused_at(plan(config("  w:\n    jobs: [a]\n    schedule: x\n"), input("w")), 11, 5, "unknown key `schedule` in workflow `w`");
  refused_at(plan("version: 2.1\njobs:\n  a: {machine: true, steps: [checkout]}\n", input("w")), 1, 1,
             "this file has no `workflows:`");
  refused_at(plan(config("  w:\n    jobs:\n      - b:\n        requires: [a]\n"), input("w")), 11, 9,
             "a workflow's job must be a mapping with one key");
}

TEST_CASE("find_invocation: a matrix-expanded name, in the named workflow or the first that has it") {
  const std::string text = config("  one:\n"
                                  "    jobs: [a]\n"
                                  "  two:\n"
                                  "    jobs:\n"
                                  "      - test: {matrix: {parameters: {python: [\"3.11\", \"3.12\"]}}}\n");
  gh::Diagnostics d("config.yml");
  auto root = YAML::Load(text);
  ProcessInput in;
  auto found = gh::job::workflow::find_invocation(root["workflows"], "test-3.12", in, d);
  REQUIRE(found);
  CHECK(found->first.name == "two");
  CHECK(found->first.jobs[found->second].job == "test");
  CHECK(found->first.jobs[found->second].arguments.back().value.Scalar() == "3.12");
  in.workflow = "one";
  CHECK(!gh::job::workflow::find_invocation(root["workflows"], "test-3.12", in, d));
  CHECK(!d.has_errors());
}

TEST_CASE("the dispatch: --workflow without --job asks for the plan") {
  gh::job::ProcessInput in = input("w");
  auto o = gh::job::parse_job_text("config.yml", config("  w:\n    jobs: [a, b]\n"), in);
  REQUIRE(o.plan);
  CHECK(!o.job);
  CHECK(o.plan->jobs.size() == 2);
  CHECK(o.plan->jobs[0].parallelism == 1);
  auto p = ok(plan(config("  w:\n    jobs: [test]\n"), in));
  CHECK(p.jobs[0].parallelism == 3);
  refused_at(plan(sub_parallelism("500"), in), 6, 0, "`parallelism: 500` is outside what this runner runs");
}

TEST_CASE("pipeline flags: --param names and bounds, --pipeline-id") {
  gh::job::EnvList ps;
  CHECK(gh::job::add_param("version=3.11", ps).empty());
  CHECK(gh::job::add_param("run-e2e_tests=", ps).empty());  // an empty value is a value
  CHECK(ps == gh::job::EnvList{{"version", "3.11"}, {"run-e2e_tests", ""}});
  CHECK(gh::job::add_param("version=3.12", ps).find("given twice") != std::string::npos);
  CHECK(gh::job::add_param("noequals", ps).find("NAME=VALUE") != std::string::npos);
  CHECK(gh::job::add_param("1st=x", ps).find("starts with a letter") != std::string::npos);
  CHECK(gh::job::add_param("a.b=x", ps).find("only letters, digits") != std::string::npos);
  CHECK(gh::job::add_param("big=" + std::string(4097, 'x'), ps).find("over 4096 bytes") != std::string::npos);
  gh::job::EnvList many;
  for (int i = 0; i < 16; ++i) REQUIRE(gh::job::add_param("p" + std::to_string(i) + "=" + std::string(4000, 'x'), many).empty());
  CHECK(gh::job::add_param("last=" + std::string(2000, 'x'), many).find("64 KiB in all") != std::string::npos);
  CHECK(gh::job::pipeline_id_problem("0b1c9a5e-1234-4d2e-9b6a-0123456789ab").empty());
  CHECK(!gh::job::pipeline_id_problem("id;rm -rf").empty());
  CHECK(!gh::job::pipeline_id_problem(std::string(65, 'a')).empty());
}
