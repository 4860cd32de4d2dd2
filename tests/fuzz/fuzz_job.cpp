// libFuzzer target: the job parser on arbitrary bytes. It must never
// crash, hang or leak, and must either produce a job (or a workflow's plan)
// or at least one error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "policy/job.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto out = gh::job::parse_job_text("fuzz.yml", text, std::nullopt);
  if (!out.job && !out.diagnostics.has_errors() && out.available_jobs.empty()) abort();
  (void)out.diagnostics.render();
  // The same bytes as a workflow to plan (policy/workflow.hpp): a plan or an error.
  gh::job::ProcessInput in;
  in.workflow = "build";
  in.branch = "main";
  auto planned = gh::job::parse_job_text("fuzz.yml", text, in);
  if (!planned.plan && !planned.diagnostics.has_errors()) abort();
  (void)planned.diagnostics.render();
  return 0;
}
