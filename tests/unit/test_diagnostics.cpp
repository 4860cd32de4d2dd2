// Diagnostics rendering (file:line:col, the line, a caret under the column,
// what is allowed) and the strict YAML helpers every parser shares.
#include <doctest/doctest.h>

#include <string>

#include "common/diagnostics.hpp"
#include "common/yaml_util.hpp"

using gh::Diagnostics;
using gh::Mark;

namespace {

bool has_error(const Diagnostics& d, int line, int col, const std::string& what) {
  for (const auto& x : d.all())
    if (x.severity == gh::Severity::Error && x.mark.line == line && x.mark.column == col &&
        x.message.find(what) != std::string::npos)
      return true;
  return false;
}

}  // namespace

TEST_CASE("render: file:line:col, the line, a caret under the column, what is allowed") {
  Diagnostics d("ci/config.yml", "version: 2.1\njobs:\n  build:\n    dokcer: x\n");
  d.error({4, 5}, "unknown key `dokcer` in job `build`", "steps, machine");
  CHECK(d.has_errors());
  CHECK(d.render() ==
        "ci/config.yml:4:5: error: unknown key `dokcer` in job `build`\n"
        "      dokcer: x\n"
        "      ^\n"
        "  allowed here: steps, machine\n");
  // The caret sits under the reported column, wherever it is.
  Diagnostics e("f.yml", "key: value\n");
  e.error({1, 6}, "bad value");
  CHECK(e.render() == "f.yml:1:6: error: bad value\n  key: value\n       ^\n");
  Diagnostics first("f.yml", "abc\n");
  first.error({1, 1}, "here");
  CHECK(first.render() == "f.yml:1:1: error: here\n  abc\n  ^\n");
}

TEST_CASE("render: tabs and control characters cannot move the caret or reach the terminal") {
  Diagnostics d("f.yml", "\tkey: \x1b[2Jv\n");
  d.error({1, 2}, "tab");
  d.error({1, 7}, "escape");
  const std::string r = d.render();
  CHECK(r == "f.yml:1:2: error: tab\n  \\tkey: ?[2Jv\n    ^\n"
             "f.yml:1:7: error: escape\n  \\tkey: ?[2Jv\n         ^\n");
  CHECK(r.find('\x1b') == std::string::npos);
}

TEST_CASE("render: whole-file errors have no line; warnings are not errors") {
  Diagnostics d("policy.yaml", "version: 1\n");
  d.warning({1, 1}, "writable host path", "read_only");
  CHECK_FALSE(d.has_errors());
  d.error({}, "the file is empty");
  CHECK(d.has_errors());
  CHECK(d.render() ==
        "policy.yaml:1:1: warning: writable host path\n  version: 1\n  ^\n  allowed here: read_only\n"
        "policy.yaml: error: the file is empty\n");
  CHECK(d.all().size() == 2);
  CHECK(d.all()[1].file == "policy.yaml");
}

TEST_CASE("render through the parsers: the caret is under the offending key") {
  // Column counts bytes, as yaml-cpp does: a multi-byte name before the key
  // moves the caret by its bytes, consistently with the reported column.
  gh::Diagnostics d("config.yml", "");
  auto text = std::string("version: 2.1\njobs:\n  b:\n    steps: [checkout]\n    colour: blue\n");
  d.set_text(text);
  auto root = gh::yaml::load(text, d);
  REQUIRE(root);
  auto top = gh::yaml::entries(*root, d);
  auto jobs = gh::yaml::entries(top[1].value, d);
  auto job = gh::yaml::entries(jobs[0].value, d);
  CHECK_FALSE(gh::yaml::check_keys(job, {"steps"}, "in job `b`", d));
  CHECK(d.render() ==
        "config.yml:5:5: error: unknown key `colour` in job `b`\n      colour: blue\n      ^\n  allowed here: steps\n");
}

TEST_CASE("marks: yaml-cpp's 0-based marks become 1-based; unknown stays 0") {
  CHECK(gh::yaml::to_mark(YAML::Mark::null_mark()).line == 0);
  CHECK(gh::yaml::to_mark(YAML::Mark()).line == 1);
  CHECK(gh::yaml::to_mark(YAML::Mark()).column == 1);
  const std::string t = "ab\ncd\n\nx";
  CHECK(gh::yaml::mark_at_offset(t, 0).line == 1);
  CHECK(gh::yaml::mark_at_offset(t, 4).line == 2);
  CHECK(gh::yaml::mark_at_offset(t, 4).column == 2);
  CHECK(gh::yaml::mark_at_offset(t, 7).line == 4);
  CHECK(gh::yaml::mark_at_offset(t, 7).column == 1);
}

TEST_CASE("valid_utf8 refuses what decoders disagree on") {
  size_t at = 99;
  CHECK(gh::yaml::valid_utf8("plain ascii"));
  CHECK(gh::yaml::valid_utf8("h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80"));
  CHECK_FALSE(gh::yaml::valid_utf8("ab\xFF", &at));
  CHECK(at == 2);
  CHECK_FALSE(gh::yaml::valid_utf8("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(gh::yaml::valid_utf8("\xE0\x80\xAF"));      // overlong, 3 bytes
  CHECK_FALSE(gh::yaml::valid_utf8("\xED\xA0\x80"));      // surrogate
  CHECK_FALSE(gh::yaml::valid_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  CHECK_FALSE(gh::yaml::valid_utf8("x\xE2\x9C", &at));    // cut short
  CHECK(at == 1);
  CHECK_FALSE(gh::yaml::valid_utf8("\x80"));              // lone continuation
}

TEST_CASE("load: duplicate keys are reported at the second one, with the first") {
  Diagnostics d("f.yml");
  auto n = gh::yaml::load("a: 1\nb:\n  c: 2\n  c: 3\na: 4\n", d);
  REQUIRE(n);  // the tree is still there so the caller can report the rest
  CHECK(has_error(d, 4, 3, "duplicate key `c` (first at line 3, column 3)"));
  CHECK(has_error(d, 5, 1, "duplicate key `a` (first at line 1, column 1)"));
  CHECK(d.all().size() == 2);
  Diagnostics q("f.yml");
  (void)gh::yaml::load("{\"a\": 1, a: 2, ~: 3, null: 4}\n", q);
  CHECK(has_error(q, 1, 10, "duplicate key `a`"));
  CHECK(has_error(q, 1, 22, "duplicate key `~`"));
}

TEST_CASE("load: aliases are budgeted; their expansion counts") {
  Diagnostics ok("f.yml");
  auto n = gh::yaml::load("a: &a {x: 1}\nb: *a\nc: *a\n", ok);
  REQUIRE(n);
  CHECK_FALSE(ok.has_errors());
  // A quadratic bomb under the alias limit: 10 levels of 10 aliases each.
  std::string q = "l0: &l0 [" + std::string(2000, 'x') + "]\n";
  for (int i = 1; i <= 9; ++i) {
    q += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) q += (k ? ",*l" : "*l") + std::to_string(i - 1);
    q += "]\n";
  }
  Diagnostics b("f.yml");
  CHECK_FALSE(gh::yaml::load(q, b));
  CHECK(b.render().find("expands to more than 1000000 nodes") != std::string::npos);
}

TEST_CASE("check_text: tabs are refused only where they indent") {
  Diagnostics d("f.yml");
  CHECK_FALSE(gh::yaml::check_text("a:\n  b: 1\n \tc: 2\n", d));
  CHECK(has_error(d, 3, 2, "tab character used for indentation"));
  CHECK(d.render().find("allowed here: spaces for indentation") != std::string::npos);
  Diagnostics ok("f.yml");
  CHECK(gh::yaml::check_text("a:\tb # tab after a key is separation\n# \tcomment\nc: >-\n  x\n  \ty\n\t\nd: |2\n   \tz\n", ok));
  CHECK_FALSE(ok.has_errors());
  // After the block scalar ends, tabs indent again.
  Diagnostics after("f.yml");
  CHECK_FALSE(gh::yaml::check_text("c: |\n  x\n\td: 1\n", after));
  CHECK(has_error(after, 3, 1, "tab character"));
  // Many bad lines: five shown, the rest counted.
  std::string many;
  for (int i = 0; i < 9; ++i) many += "a" + std::to_string(i) + ":\n\tb: 1\n";
  Diagnostics m("f.yml");
  CHECK_FALSE(gh::yaml::check_text(many, m));
  CHECK(m.all().size() == 6);
  CHECK(m.all().back().message.find("on 4 more line(s)") != std::string::npos);
}

TEST_CASE("entries: merge keys as CircleCI applies them") {
  Diagnostics d("f.yml");
  auto n = gh::yaml::load("base: &b {x: 1, y: 2}\nmore: &m {y: 3, z: 4}\nuse:\n  <<: [*b, *m]\n  x: own\n", d);
  REQUIRE(n);
  auto top = gh::yaml::entries(*n, d);
  REQUIRE(top.size() == 3);
  auto use = gh::yaml::entries(top[2].value, d);
  REQUIRE(use.size() == 3);
  CHECK(use[0].key == "y");
  CHECK(use[0].value.Scalar() == "2");  // earlier merged map wins
  CHECK(use[0].mark.line == 1);          // marked where it is written
  CHECK(use[1].key == "z");
  CHECK(use[2].key == "x");
  CHECK(use[2].value.Scalar() == "own");  // written key wins
  CHECK_FALSE(d.has_errors());

  Diagnostics k("f.yml");
  auto c = gh::yaml::load("? [a]\n: 1\nb: 2\n", k);
  REQUIRE(c);
  auto es = gh::yaml::entries(*c, k);
  CHECK(es.size() == 1);
  CHECK(has_error(k, 1, 3, "a key here must be a plain string"));
}

TEST_CASE("typed getters record what is allowed instead of throwing") {
  Diagnostics d("f.yml", "");
  auto n = gh::yaml::load("b1: yes\nb2: 'true'\nu1: 42\nu2: 42x\nu3: 99999999999999999999\nf1: 2.5\nf2: 2.\n"
                          "s1: [x]\ns2:\ns3: \"a\\tb\"\n", d);
  REQUIRE(n);
  auto es = gh::yaml::entries(*n, d);
  REQUIRE(es.size() == 10);
  CHECK(gh::yaml::get_bool(es[0], d) == true);
  CHECK_FALSE(gh::yaml::get_bool(es[1], d));
  CHECK(has_error(d, 2, 5, "`b2` must be true or false, found the quoted string \"true\": a quoted value is a string; drop the quotes"));
  CHECK(gh::yaml::get_uint(es[2], 0, 100, d) == 42u);
  CHECK_FALSE(gh::yaml::get_uint(es[2], 0, 10, d));
  CHECK(has_error(d, 3, 5, "`u1` is out of range: it must be from 0 to 10, found 42"));
  CHECK_FALSE(gh::yaml::get_uint(es[3], 0, 100, d));
  CHECK(has_error(d, 4, 5, "must be a whole number"));
  CHECK_FALSE(gh::yaml::get_uint(es[4], 0, UINT64_MAX, d));
  CHECK(gh::yaml::get_number(es[5], 0, 10, d) == doctest::Approx(2.5));
  CHECK_FALSE(gh::yaml::get_number(es[6], 0, 10, d));
  CHECK_FALSE(gh::yaml::get_string(es[7], d));
  CHECK(has_error(d, 8, 5, "`s1` must be a string, found a list"));
  CHECK_FALSE(gh::yaml::get_string(es[8], d));
  CHECK(has_error(d, 9, 1, "`s2` must be a string, found nothing (null)"));  // at the key, not the next line
  CHECK_FALSE(gh::yaml::get_string(es[9], d));
  CHECK(has_error(d, 10, 5, "control character 0x09"));
  CHECK(gh::yaml::get_string(es[9], d, gh::yaml::Text::MultiLine) == "a\tb");
  for (const auto& x : d.all()) CHECK_FALSE(x.allowed.empty());
}

TEST_CASE("describe: what was found, short and printable") {
  CHECK(gh::yaml::describe(YAML::Node(YAML::NodeType::Map)) == "a mapping");
  CHECK(gh::yaml::describe(YAML::Node(YAML::NodeType::Sequence)) == "a list");
  CHECK(gh::yaml::describe(YAML::Node(YAML::NodeType::Null)) == "nothing (null)");
  CHECK(gh::yaml::describe(YAML::Node("a\x1b" "b")) == "`a?b`");
  CHECK(gh::yaml::describe(YAML::Node(std::string(100, 'x'))) == "`" + std::string(40, 'x') + "...`");
  // Cut at a character boundary, never inside one.
  CHECK(gh::yaml::describe(YAML::Node(std::string(39, 'x') + "\xC3\xA9yz")) == "`" + std::string(39, 'x') + "...`");
  CHECK(gh::yaml::printable("a\xC2\x9B" "b\xFF\xC3\xA9\x7F") == "a?b?\xC3\xA9?");
  CHECK(gh::yaml::printable("tab\there") == "tab?here");
}
