// Diagnostics for operator-written and job-written files (policy, job).
// Every error names file:line:column, shows the line with a caret under the
// column, and says what is allowed there. Parsers collect all diagnostics,
// then the caller fails once with the whole list.
#pragma once

#include <string>
#include <vector>

namespace gh {

struct Mark {
  int line = 0;    // 1-based; 0 = unknown (whole file)
  int column = 0;  // 1-based
};

enum class Severity { Error, Warning };

struct Diagnostic {
  Severity severity = Severity::Error;
  std::string file;
  Mark mark;
  std::string message;  // what is wrong
  std::string allowed;  // what is allowed there (may be empty)
};

class Diagnostics {
 public:
  explicit Diagnostics(std::string file, std::string text = {});

  void error(Mark m, std::string message, std::string allowed = {});
  void warning(Mark m, std::string message, std::string allowed = {});

  bool has_errors() const;
  const std::vector<Diagnostic>& all() const { return list_; }
  const std::string& file() const { return file_; }
  void set_text(std::string text) { text_ = std::move(text); }

  // file:line:col: error: message
  //   <the offending line>
  //   <caret under the column>
  //   allowed here: ...
  std::string render() const;
  std::string render(const Diagnostic& d) const;

 private:
  std::string file_;
  std::string text_;
  std::vector<Diagnostic> list_;
};

}  // namespace gh
