// Syntax tree of a Go template (gotmpl_parse.cpp builds it, gotmpl_exec.cpp runs it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pl::chat::go {

struct Pos {
  uint32_t line = 1, col = 1;
};

struct Pipe;

struct Arg {
  enum class Kind : uint8_t {
    Dot,      // .
    Field,    // .A.B: fields applied to dot
    Var,      // $x or $x.A.B (name "$x", fields A, B)
    Func,     // a function name (only as a command's first argument)
    Literal,  // string, number, bool
    Nil,
    Pipe,     // (pipeline) with optional fields after it
  };
  Kind kind = Kind::Dot;
  Pos pos;
  std::string name;
  std::vector<std::string> fields;
  nlohmann::ordered_json literal;
  std::shared_ptr<const Pipe> pipe;
};

struct Cmd {
  Pos pos;
  std::vector<Arg> args;
};

struct Pipe {
  Pos pos;
  std::vector<std::string> decl;  // variables declared (":=") or assigned ("=")
  bool assign = false;
  std::vector<Cmd> cmds;
};

struct Node {
  enum class Kind : uint8_t { Text, Action, If, Range, With, Break, Continue };
  Kind kind = Kind::Text;
  Pos pos;
  std::string text;
  Pipe pipe;
  std::vector<Node> list, else_list;  // "else if" / "else with": else_list holds that one node
};

struct Tree {
  std::string source;
  std::vector<Node> root;
};

std::shared_ptr<Tree> parse(std::string_view source);

// Functions the executor knows (parse-time check, as Go does).
bool is_function(const std::string& name);

}  // namespace pl::chat::go
