// CircleCI 2.1 processing, feature by feature: parameter types and
// defaults, missing and unexpected arguments, enums, steps parameters,
// executors, `when`/`unless` logic, orbs, bounds, and errors taken back to
// the line in the user's file after expansion.
#include <doctest/doctest.h>

#include <string>

#include "policy/job.hpp"

namespace {

using gh::job::ParseOutcome;
using gh::job::ProcessInput;

ParseOutcome parse(const std::string& text, const std::string& job = "build", ProcessInput in = {}) {
  in.job_name = job;
  return gh::job::parse_job_text("config.yml", text, in);
}

bool has_error(const ParseOutcome& o, int line, int col, const std::string& what) {
  for (const auto& d : o.diagnostics.all())
    if (d.severity == gh::Severity::Error && d.mark.line == line && d.mark.column == col &&
        d.message.find(what) != std::string::npos)
      return true;
  return false;
}

std::string command(const ParseOutcome& o, size_t i) {
  REQUIRE(o.job);
  REQUIRE(i < o.job->steps.size());
  return o.job->steps[i].run.command;
}

const char* kCommands = R"(version: 2.1
commands:
  greet:
    parameters:
      who: {type: string, default: world}
      loud: {type: boolean, default: false}
      times: {type: integer, default: 1}
      shell: {type: enum, enum: [bash, sh], default: bash}
      var: {type: env_var_name, default: GREETING}
    steps:
      - run: echo "hello << parameters.who >> x<< parameters.times >> $<< parameters.var >> via << parameters.shell >>"
      - when:
          condition: << parameters.loud >>
          steps:
            - run: echo LOUD
      - unless:
          condition: << parameters.loud >>
          steps:
            - run: echo quiet
  wrap:
    parameters:
      inner: {type: steps}
    steps:
      - run: echo before
      - << parameters.inner >>
      - run: echo after
jobs:
  build:
    parameters:
      target: {type: string, default: all}
    machine: true
    steps:
      - greet
      - greet: {who: you, loud: true, times: 3, shell: sh, var: OTHER}
      - wrap:
          inner:
            - run: make << parameters.target >>
            - greet: {who: inner}
)";

}  // namespace

TEST_CASE("commands: defaults, typed arguments, when/unless, steps parameters spliced in place") {
  auto o = parse(kCommands);
  INFO(o.diagnostics.render());
  REQUIRE(o.job);
  REQUIRE(o.job->steps.size() == 9);
  CHECK(command(o, 0) == "echo \"hello world x1 $GREETING via bash\"");
  CHECK(command(o, 1) == "echo quiet");
  CHECK(command(o, 2) == "echo \"hello you x3 $OTHER via sh\"");
  CHECK(command(o, 3) == "echo LOUD");
  CHECK(command(o, 4) == "echo before");
  CHECK(command(o, 5) == "make all");
  CHECK(command(o, 6) == "echo \"hello inner x1 $GREETING via bash\"");
  CHECK(command(o, 7) == "echo quiet");
  CHECK(command(o, 8) == "echo after");
  // Each step is marked where its text is written: the command's definition.
  CHECK(o.job->steps[0].mark.line == 11);
}

TEST_CASE("arguments are checked against their declarations, errors at the user's line") {
  auto args = [](const std::string& a) {
    std::string t = kCommands;
    const std::string from = "      - greet: {who: you, loud: true, times: 3, shell: sh, var: OTHER}\n";
    return t.replace(t.find(from), from.size(), "      - greet: " + a + "\n");
  };
  // Line 34 is the use; columns point at the argument's value.
  CHECK(has_error(parse(args("{loud: maybe}")), 34, 23, "argument `loud` of command `greet`: expected true or false"));
  CHECK(has_error(parse(args("{loud: \"true\"}")), 34, 23, "expected true or false"));
  CHECK(has_error(parse(args("{times: many}")), 34, 24, "expected a whole number"));
  CHECK(has_error(parse(args("{shell: zsh}")), 34, 24, "`zsh` is not one of the enum's values"));
  CHECK(has_error(parse(args("{var: 1BAD}")), 34, 22, "expected an environment variable name"));
  CHECK(has_error(parse(args("{colour: red}")), 34, 17, "Unexpected argument(s): colour"));
  auto missing = parse("version: 2.1\ncommands:\n  c:\n    parameters: {x: {type: string}}\n    steps: [{run: echo << parameters.x >>}]\n"
                       "jobs:\n  build:\n    steps:\n      - c\n");
  CHECK(has_error(missing, 9, 9, "Missing required argument(s): x"));
  auto enum_default = parse("version: 2.1\ncommands:\n  c:\n    parameters: {x: {type: enum, enum: [a], default: b}}\n"
                            "    steps: [checkout]\njobs:\n  build:\n    steps: [c]\n");
  CHECK(has_error(enum_default, 4, 54, "`b` is not one of the enum's values"));
  auto bad_type = parse("version: 2.1\ncommands:\n  c:\n    parameters: {x: {type: list}}\n    steps: [checkout]\n"
                        "jobs:\n  build:\n    steps: [c]\n");
  CHECK(has_error(bad_type, 4, 28, "parameter `x` has an unknown type `list`"));
}

TEST_CASE("errors found after expansion point at the definition and name the use") {
  auto o = parse("version: 2.1\ncommands:\n  c:\n    steps:\n      - run:\n          command: ls\n          colour: red\n"
                 "jobs:\n  build:\n    steps:\n      - c\n");
  CHECK_FALSE(o.job);
  CHECK(has_error(o, 7, 11, "unknown key `colour` in a `run` step (command `c` used at 11:9)"));
}

TEST_CASE("executors with parameters; the job's own keys win") {
  auto o = parse(R"(version: 2.1
executors:
  linux:
    parameters:
      size: {type: enum, enum: [medium, large], default: medium}
    machine:
      image: ubuntu-2204:2024.01.1
    resource_class: << parameters.size >>
    working_directory: ~/exec
    environment: {A: from-executor, B: from-executor}
jobs:
  build:
    executor: {name: linux, size: large}
    environment: {B: from-job}
    steps: [checkout]
)");
  INFO(o.diagnostics.render());
  REQUIRE(o.job);
  CHECK(o.job->machine_image == "ubuntu-2204:2024.01.1");
  CHECK(o.job->machine_image_mark.line == 7);
  CHECK(o.job->resource_class == "large");
  CHECK(o.job->resource_class_mark.line == 13);  // the argument that gave it
  CHECK(o.job->working_directory == "~/exec");
  CHECK(o.job->environment == gh::job::EnvList{{"A", "from-executor"}, {"B", "from-job"}});
  auto unknown = parse("version: 2.1\njobs:\n  build:\n    executor: nope\n    steps: [checkout]\n");
  CHECK(has_error(unknown, 4, 15, "Cannot find a definition for executor named nope"));
  auto docker = parse("version: 2.1\nexecutors:\n  d:\n    docker: [{image: x}]\njobs:\n  build:\n    executor: d\n    steps: [checkout]\n");
  CHECK_FALSE(docker.job);
  CHECK(docker.diagnostics.render().find("`docker:` executor is refused") != std::string::npos);
}

TEST_CASE("logic statements: the truth table") {
  auto run_if = [](const std::string& cond) {
    auto o = parse("version: 2.1\njobs:\n  build:\n    steps:\n      - run: echo always\n      - when:\n          condition: " +
                   cond + "\n          steps: [{run: echo yes}]\n");
    INFO(cond);
    INFO(o.diagnostics.render());
    REQUIRE(o.job);
    return o.job->steps.size() == 2;
  };
  CHECK(run_if("true"));
  CHECK_FALSE(run_if("false"));
  CHECK_FALSE(run_if("\"\""));
  CHECK_FALSE(run_if("0"));
  CHECK(run_if("text"));
  CHECK(run_if("{and: [true, yes]}"));
  CHECK_FALSE(run_if("{and: [true, false]}"));
  CHECK_FALSE(run_if("{and: []}"));
  CHECK(run_if("{or: [false, true]}"));
  CHECK_FALSE(run_if("{or: [false, false]}"));
  CHECK(run_if("{not: false}"));
  CHECK_FALSE(run_if("{not: true}"));
  CHECK(run_if("{equal: [a, a, a]}"));
  CHECK_FALSE(run_if("{equal: [a, b]}"));
  CHECK(run_if("{matches: {pattern: \"^rel/.*$\", value: rel/1.0}}"));
  CHECK_FALSE(run_if("{matches: {pattern: \"rel\", value: prerelease}}"));  // the whole value
  CHECK(run_if("{and: [{not: {equal: [main, << pipeline.git.branch >>]}}, {or: [false, true]}]}"));
  auto bad = parse("version: 2.1\njobs:\n  build:\n    steps:\n      - when:\n          condition: {maybe: [a]}\n"
                   "          steps: [checkout]\n");
  CHECK(has_error(bad, 6, 23, "`maybe` is not a logic statement"));
  auto re = parse("version: 2.1\njobs:\n  build:\n    steps:\n      - when:\n          condition: {matches: {pattern: \"(\", value: x}}\n"
                  "          steps: [checkout]\n");
  CHECK(has_error(re, 6, 42, "is not a regular expression"));
}

TEST_CASE("pipeline values and parameters, --param typed like the declaration") {
  const std::string text = R"(version: 2.1
parameters:
  deploy: {type: boolean, default: false}
  region: {type: string, default: eu}
jobs:
  build:
    steps:
      - run: echo << pipeline.git.branch >> << pipeline.number >> << pipeline.parameters.region >>
      - when:
          condition: << pipeline.parameters.deploy >>
          steps: [{run: ./deploy}]
)";
  ProcessInput in;
  in.branch = "main";
  in.number = 42;
  auto plain = parse(text, "build", in);
  REQUIRE(plain.job);
  CHECK(command(plain, 0) == "echo main 42 eu");
  CHECK(plain.job->steps.size() == 1);
  in.parameters = {{"deploy", "true"}, {"region", "us"}};
  auto deploy = parse(text, "build", in);
  REQUIRE(deploy.job);
  CHECK(command(deploy, 0) == "echo main 42 us");
  CHECK(command(deploy, 1) == "./deploy");
  in.parameters = {{"deploy", "perhaps"}};
  CHECK(parse(text, "build", in).diagnostics.render().find("expected true or false") != std::string::npos);
  in.parameters = {{"colour", "red"}};
  CHECK(parse(text, "build", in).diagnostics.render().find("Unexpected argument(s): colour") != std::string::npos);
  // `\<<` is a literal `<<`.
  auto esc = parse("version: 2.1\njobs:\n  build:\n    steps: [{run: echo \\<< pipeline.x >>}]\n");
  REQUIRE(esc.job);
  CHECK(command(esc, 0) == "echo << pipeline.x >>");
}

TEST_CASE("orbs: inline orbs; packed orbs from the caller; a missing orb is asked for, then refused by name") {
  auto inline_orb = parse(R"(version: 2.1
orbs:
  tools:
    commands:
      hello:
        parameters: {n: {type: string, default: one}}
        steps: [{run: echo << parameters.n >>}]
    executors:
      box: {machine: {image: ubuntu-2204:current}}
jobs:
  build:
    executor: tools/box
    steps: [tools/hello, {tools/hello: {n: two}}]
)");
  INFO(inline_orb.diagnostics.render());
  REQUIRE(inline_orb.job);
  CHECK(command(inline_orb, 0) == "echo one");
  CHECK(command(inline_orb, 1) == "echo two");
  CHECK(inline_orb.job->machine_image == "ubuntu-2204:current");

  const std::string text = "version: 2.1\norbs:\n  node: circleci/node@5.1.0\n  unused: acme/other@1\njobs:\n  build:\n"
                           "    steps:\n      - node/install: {node-version: '20'}\n";
  auto asked = parse(text);
  CHECK_FALSE(asked.job);
  CHECK_FALSE(asked.diagnostics.has_errors());
  CHECK(asked.needed_orbs == std::vector<std::string>{"circleci/node@5.1.0"});  // only what the job uses

  ProcessInput in;
  in.orbs = {{"circleci/node@5.1.0",
              "version: 2.1\ncommands:\n  install:\n    parameters:\n      node-version: {type: string, default: ''}\n"
              "    steps:\n      - run: nvm install << parameters.node-version >>\n"}};
  auto given = parse(text, "build", in);
  INFO(given.diagnostics.render());
  REQUIRE(given.job);
  CHECK(command(given, 0) == "nvm install 20");
  CHECK(given.job->steps[0].mark.line == 8);  // the use in the user's file

  in.orbs = {{"circleci/node@5.1.0", ""}};  // the broker looked and did not find it
  in.orb_directory = "/etc/gatehouse/orbs";
  auto missing = parse(text, "build", in);
  CHECK(has_error(missing, 3, 9, "orb `circleci/node@5.1.0` is not in the local orb folder /etc/gatehouse/orbs"));
  auto bad_ref = parse("version: 2.1\norbs:\n  x: ../../etc/passwd\njobs:\n  build:\n    steps: [x/y]\n");
  CHECK(has_error(bad_ref, 3, 6, "must name an orb as namespace/name@version"));
}

TEST_CASE("expansion is bounded: recursion, depth and exponential growth are refused at the use") {
  auto self = parse("version: 2.1\ncommands:\n  a:\n    steps: [b]\n  b:\n    steps: [a]\njobs:\n  build:\n    steps: [a]\n");
  CHECK_FALSE(self.job);
  CHECK(self.diagnostics.render().find("command `a` uses itself: a -> b -> a") != std::string::npos);
  // Each level doubles: 2^30 steps if nothing stopped it.
  std::string bomb = "version: 2.1\ncommands:\n  c0:\n    steps: [{run: echo}]\n";
  for (int i = 1; i <= 30; ++i)
    bomb += "  c" + std::to_string(i) + ":\n    steps: [c" + std::to_string(i - 1) + ", c" + std::to_string(i - 1) + "]\n";
  bomb += "jobs:\n  build:\n    steps: [c30]\n";
  auto o = parse(bomb);
  CHECK_FALSE(o.job);
  CHECK(o.diagnostics.render().find("expands to more than 10000 steps") != std::string::npos);
  // A parameter that doubles its text at each level.
  std::string text_bomb = "version: 2.1\ncommands:\n  t0:\n    parameters: {s: {type: string}}\n    steps: [{run: echo << parameters.s >>}]\n";
  for (int i = 1; i <= 40; ++i)
    text_bomb += "  t" + std::to_string(i) + ":\n    parameters: {s: {type: string}}\n    steps: [{t" + std::to_string(i - 1) +
                 ": {s: \"<< parameters.s >><< parameters.s >>\"}}]\n";
  text_bomb += "jobs:\n  build:\n    steps: [{t40: {s: xxxxxxxxxxxxxxxx}}]\n";
  auto t = parse(text_bomb);
  CHECK_FALSE(t.job);
  CHECK(t.diagnostics.render().find("passes the limit") != std::string::npos);
}

TEST_CASE("conditional sections: <<# x >>text<</ x >> when x is true, <<^ x >> when false") {
  auto o = parse("version: 2.1\ncommands:\n  c:\n    parameters: {loud: {type: boolean, default: false}}\n"
                 "    steps: [{run: \"echo hi<<# parameters.loud >> LOUD<</ parameters.loud >>"
                 "<<^ parameters.loud >> quiet<</ parameters.loud >>\"}]\njobs:\n  build:\n    steps: [c, {c: {loud: true}}]\n");
  INFO(o.diagnostics.render());
  REQUIRE(o.job);
  CHECK(command(o, 0) == "echo hi quiet");
  CHECK(command(o, 1) == "echo hi LOUD");
  auto open = parse("version: 2.1\njobs:\n  build:\n    parameters: {x: {type: boolean, default: true}}\n"
                    "    steps: [{run: \"echo <<# parameters.x >>never closed\"}]\n");
  CHECK_FALSE(open.job);
  CHECK(open.diagnostics.render().find("is not closed with `<</ parameters.x >>`") != std::string::npos);
}
