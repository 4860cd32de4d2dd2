// The broker's messages that the workflow and node code added: the Plan
// the root front end reads before any job runs, and the job header's node.
// Each check the decoder makes is shown refusing what it must.
#include <doctest/doctest.h>

#include <string>

#include "ipc/broker_messages.hpp"

using namespace gh::ipc;

namespace {

gh::job::WorkflowPlan good_plan() {
  gh::job::WorkflowPlan p;
  p.name = "ci";
  p.jobs = {{"build", {}, 1, false}, {"test-3.11", {"build"}, 3, false}, {"hold", {"test-3.11"}, 1, true},
            {"deploy", {"hold", "build"}, 1, false}};
  p.filtered_out = {"lint"};
  return p;
}

// The plan as the broker frames it, decoded as the front end decodes it.
gh::Result<PlanEvent> round_trip(const gh::job::WorkflowPlan& p) { return decode<PlanEvent>(encode(PlanEvent{p})); }

}  // namespace

TEST_CASE("a plan round-trips whole") {
  auto back = round_trip(good_plan());
  REQUIRE(back);
  CHECK(back->plan.name == "ci");
  REQUIRE(back->plan.jobs.size() == 4);
  CHECK(back->plan.jobs[1].name == "test-3.11");
  CHECK(back->plan.jobs[1].parallelism == 3);
  CHECK(back->plan.jobs[2].approval);
  CHECK(back->plan.jobs[3].needs == std::vector<std::string>{"hold", "build"});
  CHECK(back->plan.filtered_out == std::vector<std::string>{"lint"});
  CHECK(plan_problem(good_plan()).empty());
  CHECK(!is_job_event(BrokerMsg::Plan));  // a run's front end, the daemon and the agent refuse it
}

TEST_CASE("the plan decoder refuses what the front end must not act on") {
  auto refused = [](gh::job::WorkflowPlan p, const std::string& why) {
    auto r = round_trip(p);
    INFO(why);
    REQUIRE(!r);
    CHECK(r.error().message.find(why) != std::string::npos);
  };
  auto p = good_plan();
  p.jobs[1].needs = {"deploy"};  // a job that runs later
  refused(p, "needs `deploy`, which does not run before it");
  p = good_plan();
  p.jobs[0].needs = {"build"};  // itself
  refused(p, "needs `build`, which does not run before it");
  p = good_plan();
  p.jobs[3].name = "build";
  refused(p, "listed twice");
  p = good_plan();
  p.jobs[1].parallelism = 0;
  refused(p, "has 0 nodes");
  p = good_plan();
  p.jobs[1].parallelism = 101;
  refused(p, "has 101 nodes");
  p = good_plan();
  p.jobs[2].parallelism = 2;  // an approval runs nothing
  refused(p, "has 2 nodes");
  p = good_plan();
  p.jobs[0].name = "bui\x1b[2Jld";  // shown on the operator's terminal, passed to the broker as --job
  refused(p, "control characters");
  p = good_plan();
  p.jobs[0].name = "a\xc2\x9b" "31m";  // C1 CSI, as UTF-8
  refused(p, "control characters");
  p = good_plan();
  p.jobs[0].name.clear();
  refused(p, "control characters");
  p = good_plan();
  p.name = "c\ni";
  refused(p, "the workflow's name");
  p = good_plan();
  p.filtered_out = {"li\tnt"};
  refused(p, "filtered-out");
  // Names over 255 bytes are refused by their bound before their meaning.
  p = good_plan();
  p.jobs[0].name = std::string(256, 'a');
  CHECK(!round_trip(p));
  // Every need counts against the plan's bound.
  p = good_plan();
  p.jobs.clear();
  p.jobs.push_back({"a", {}, 1, false});
  for (int i = 0; i < 21; ++i) {
    gh::job::WorkflowJob j{"j" + std::to_string(i), {}, 1, false};
    j.needs.assign(1000, "a");
    p.jobs.push_back(j);
  }
  refused(p, "more than 20000");
}

TEST_CASE("the stream reader refuses a Plan over its bound before reading it") {
  BrokerStreamReader r;
  Encoder e;
  uint32_t magic = kBrokerMagic, type = static_cast<uint32_t>(BrokerMsg::Plan), len = 6 * 1024 * 1024 + 1;
  e.u32(magic);
  e.u32(type);
  e.u32(len);
  CHECK(!r.feed(e.take()));
  CHECK(r.error().find("Plan message of 6291457 bytes is over its bound") != std::string::npos);
}

TEST_CASE("the job header names a node the job has") {
  JobHeaderEvent h{"test", "config.yml", "default", "seccomp", 2, 3};
  auto back = decode<JobHeaderEvent>(encode(h));
  REQUIRE(back);
  CHECK(back->node_index == 2);
  CHECK(back->node_total == 3);
  h.node_index = 3;
  CHECK(!decode<JobHeaderEvent>(encode(h)));
  h.node_index = 0;
  h.node_total = 0;
  CHECK(!decode<JobHeaderEvent>(encode(h)));
  h.node_total = 101;
  CHECK(!decode<JobHeaderEvent>(encode(h)));
}
