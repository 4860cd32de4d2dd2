#include "common/diagnostics.hpp"

#include <sstream>

namespace gh {

Diagnostics::Diagnostics(std::string file, std::string text)
    : file_(std::move(file)), text_(std::move(text)) {}

namespace {

// The same diagnostic again (one command used by several jobs, expanded in
// each) says nothing new; the recent ones are enough to look at.
bool repeated(const std::vector<Diagnostic>& list, Severity s, Mark m, const std::string& message) {
  const size_t from = list.size() > 64 ? list.size() - 64 : 0;
  for (size_t i = from; i < list.size(); ++i)
    if (list[i].severity == s && list[i].mark.line == m.line && list[i].mark.column == m.column &&
        list[i].message == message)
      return true;
  return false;
}

}  // namespace

void Diagnostics::error(Mark m, std::string message, std::string allowed) {
  if (repeated(list_, Severity::Error, m, message)) return;
  list_.push_back({Severity::Error, file_, m, std::move(message), std::move(allowed)});
}

void Diagnostics::warning(Mark m, std::string message, std::string allowed) {
  if (repeated(list_, Severity::Warning, m, message)) return;
  list_.push_back({Severity::Warning, file_, m, std::move(message), std::move(allowed)});
}

bool Diagnostics::has_errors() const {
  for (const auto& d : list_)
    if (d.severity == Severity::Error) return true;
  return false;
}

static std::string line_of(const std::string& text, int line) {
  if (line <= 0) return {};
  std::istringstream in(text);
  std::string l;
  for (int i = 1; std::getline(in, l); ++i)
    if (i == line) return l;
  return {};
}

std::string Diagnostics::render(const Diagnostic& d) const {
  std::ostringstream out;
  out << d.file;
  if (d.mark.line > 0) out << ':' << d.mark.line << ':' << (d.mark.column > 0 ? d.mark.column : 1);
  out << ": " << (d.severity == Severity::Error ? "error" : "warning") << ": " << d.message << '\n';
  if (d.mark.line > 0) {
    std::string l = line_of(text_, d.mark.line);
    // Show control characters visibly so a hostile line cannot rewrite the
    // operator's terminal.
    std::string shown;
    for (unsigned char c : l) {
      if (c == '\t') shown += "\\t";
      else if (c < 0x20 || c == 0x7f) shown += '?';
      else shown += static_cast<char>(c);
    }
    out << "  " << shown << '\n';
    int col = d.mark.column > 0 ? d.mark.column : 1;
    // Columns count bytes; a tab shown as "\t" takes two cells.
    int pad = 0;
    for (int i = 0; i < col - 1 && i < static_cast<int>(l.size()); ++i) pad += (l[static_cast<size_t>(i)] == '\t') ? 2 : 1;
    out << "  " << std::string(static_cast<size_t>(pad), ' ') << "^\n";
  }
  if (!d.allowed.empty()) out << "  allowed here: " << d.allowed << '\n';
  return out.str();
}

std::string Diagnostics::render() const {
  std::string all;
  for (const auto& d : list_) all += render(d);
  return all;
}

}  // namespace gh
