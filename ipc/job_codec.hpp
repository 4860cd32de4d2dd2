// Typed encoding of a parsed job (policy/job.hpp): what the parse child
// answers for a job file. The job file is hostile (it comes from the
// repository being built), so the child that parsed it may be too: the
// decoder is the broker's first look at the job, and it checks bounds and
// the meaning the broker relies on.
//
// Every field is encoded, the steps' diagnostics marks (`Mark`) excepted. A step
// carries only the part its kind uses (RunStep for run, CheckoutStep for
// checkout); the other part decodes as its defaults.
//
// Bounds come from policy/job.hpp (kMaxSteps, kMaxCommandBytes,
// kMaxEnvEntries, kMaxJobFileBytes) and from the job parser's checks: a
// directory is at most 4095 bytes, a variable name 256, a job name 128
// (config jobs) or a file's stem (a display path, at most kMaxDisplayBytes),
// and any other string is one scalar of the file (kMaxJobFileBytes).
//
// Checks of meaning (job_problem): no NUL byte in any string (the parser
// refuses them everywhere, and the broker passes names, variables, paths
// and commands to C strings); variable names valid (letters, digits and _,
// not starting with a digit, so never empty and never holding `=`); at
// least one step; a run step has a command; timeouts within 1s to 24h;
// directories as the parser allows them (never through `..`, never
// `~user`).
#pragma once

#include <cstddef>
#include <string>

#include "ipc/codec.hpp"
#include "policy/job.hpp"

namespace gh::ipc {

inline constexpr size_t kMaxDisplayBytes = 4096;        // a path as given on a command line (PATH_MAX)
inline constexpr size_t kMaxJobDirectoryBytes = 4095;   // job_parse.cpp directory()
inline constexpr size_t kMaxJobScalarBytes = job::kMaxJobFileBytes;

template <class C> void fields(C& c, job::RunStep& v);
template <class C> void fields(C& c, job::CheckoutStep& v);
template <class C> void fields(C& c, job::Step& v);
template <class C> void fields(C& c, job::ProcessInput& v);
template <class C> void fields(C& c, job::WorkflowJob& v);
template <class C> void fields(C& c, job::WorkflowPlan& v);
// A whole job; decoding checks it (job_problem).
template <class C> void fields(C& c, job::Job& v);

// What is wrong with a job for the broker to use, naming the step and
// field ("step 3: the command holds a NUL byte"), or "" when nothing is.
std::string job_problem(const job::Job& j);

}  // namespace gh::ipc
