// The local orb folder (orb_folder.hpp).
#include "common/orb_folder.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <vector>

namespace gh {

namespace {

bool name_chars(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::islower(c) || std::isdigit(c) || c == '-' || c == '_';
  });
}

// "5.1.0" -> {5, 1, 0}; nullopt unless 1 to 3 numbers of at most 9 digits.
std::optional<std::vector<unsigned long>> version_numbers(std::string_view v) {
  std::vector<unsigned long> out;
  for (size_t i = 0; i <= v.size();) {
    size_t j = v.find('.', i);
    if (j == std::string_view::npos) j = v.size();
    if (j == i || j - i > 9) return std::nullopt;
    unsigned long n = 0;
    for (size_t k = i; k < j; ++k) {
      if (!std::isdigit(static_cast<unsigned char>(v[k]))) return std::nullopt;
      n = n * 10 + static_cast<unsigned long>(v[k] - '0');
    }
    out.push_back(n);
    i = j + 1;
  }
  if (out.empty() || out.size() > 3) return std::nullopt;
  return out;
}

// A development version's label (`dev:alpha`, `dev:1a2b3c`): as a name, dots allowed.
bool dev_label(std::string_view s) {
  return !s.empty() && s.size() <= 64 && s.front() != '.' && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::islower(c) || std::isdigit(c) || c == '-' || c == '_' || c == '.';
  });
}

}  // namespace

bool valid_orb_ref(const std::string& ref) {
  const size_t slash = ref.find('/'), at = ref.find('@');
  if (slash == std::string::npos || at == std::string::npos || at < slash) return false;
  const std::string_view r(ref);
  if (!name_chars(r.substr(0, slash)) || !name_chars(r.substr(slash + 1, at - slash - 1))) return false;
  const std::string_view v = r.substr(at + 1);
  if (v.substr(0, 4) == "dev:") return name_chars(v.substr(4)) || dev_label(v.substr(4));
  return v == "volatile" || version_numbers(v).has_value();
}

Result<std::optional<std::string>> find_orb_file(const std::string& dir, const std::string& ref) {
  if (!valid_orb_ref(ref)) return Error{"`" + ref + "` is not an orb reference (namespace/name@version)"};
  const size_t slash = ref.find('/'), at = ref.find('@');
  const std::string ns = ref.substr(0, slash), name = ref.substr(slash + 1, at - slash - 1);
  const std::string wanted = ref.substr(at + 1);
  if (wanted.rfind("dev:", 0) == 0) {
    // A development version is one file, named as the config names it.
    const std::filesystem::path f = std::filesystem::path(dir) / ns / (name + "@" + wanted + ".yml");
    std::error_code ec;
    if (std::filesystem::is_regular_file(f, ec)) return std::optional<std::string>{f.string()};
    return std::optional<std::string>{};
  }
  const auto want = version_numbers(wanted);  // nullopt: volatile
  std::error_code ec;
  std::filesystem::directory_iterator it(std::filesystem::path(dir) / ns, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) return std::optional<std::string>{};
    return Error{"cannot read the orb folder " + dir + "/" + ns + ": " + ec.message()};
  }
  std::optional<std::vector<unsigned long>> best;
  std::string best_file;
  const std::string prefix = name + "@", suffix = ".yml";
  for (const auto& e : it) {
    const std::string f = e.path().filename().string();
    if (f.size() <= prefix.size() + suffix.size() || f.compare(0, prefix.size(), prefix) != 0 ||
        f.compare(f.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    auto v = version_numbers(std::string_view(f).substr(prefix.size(), f.size() - prefix.size() - suffix.size()));
    if (!v || v->size() != 3) continue;  // the folder holds whole versions
    if (want && !std::equal(want->begin(), want->end(), v->begin())) continue;
    if (!best || *v > *best) {
      best = v;
      best_file = e.path().string();
    }
  }
  if (!best) return std::optional<std::string>{};
  return std::optional<std::string>{best_file};
}

}  // namespace gh
