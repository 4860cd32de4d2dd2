// One helper the unit tests share: a whole file's bytes (the test fails if
// it cannot be opened).
#pragma once

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

inline std::string read_all(const std::string& path) {
  FILE* f = fopen(path.c_str(), "r");
  REQUIRE(f);
  std::string s;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) s.append(buf, n);
  fclose(f);
  return s;
}
