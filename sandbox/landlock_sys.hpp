// Landlock's syscall numbers and the version query flag, for the two files
// that make raw Landlock calls (landlock.cpp, landlock_abi.cpp): glibc has
// no wrappers, and Debian 12's headers may lack the numbers.
#pragma once

#include <sys/syscall.h>

#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef SYS_landlock_add_rule
#define SYS_landlock_add_rule 445
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif
