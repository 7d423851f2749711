#include "relay/files/master_config.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <utility>

#include "relay/base/strings.h"

namespace siterelay::files {
namespace {

constexpr std::string_view kRootName = "APPLICATION";
constexpr std::string_view kModelElementPrefix = "APPLICATION_";
constexpr std::string_view kModelImagePrefix = "APP_FILE_PATH_";
constexpr std::string_view kModelConfigFilesPrefix = "CONFIG_FILES_";
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// Longest part number or model key substituted into a path; Poly's are 14 and 8 characters.
constexpr size_t kMaxFactBytes = 32;
// Digits in one run of a dotted version ("47435"); a longer run is a date or a serial, not a part
// of a version.
constexpr size_t kMaxVersionRunDigits = 10;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
// XML's S production (section 2.3).
bool IsXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
// The ASCII part of XML's NameStartChar and NameChar (section 2.3); Poly's names are ASCII.
bool IsNameStart(char c) { return IsAlpha(c) || c == '_' || c == ':'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c) || c == '-' || c == '.'; }

// XML 1.0 section 2.2, Char.
bool IsXmlChar(uint32_t cp) {
  return cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
         (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

std::string HexByte(unsigned char c) {
  std::array<char, 8> buf{};
  std::snprintf(buf.data(), buf.size(), "0x%02X", c);
  return buf.data();
}

std::string CodePoint(uint32_t cp) {
  std::array<char, 16> buf{};
  std::snprintf(buf.data(), buf.size(), "U+%04X", cp);
  return buf.data();
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && EqualsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

// A value for an error message: quoted, escaped, and cut short, so a message stays one short line.
std::string Excerpt(std::string_view s) {
  constexpr size_t kMax = 40;
  return s.size() <= kMax ? Quote(s) : Quote(s.substr(0, kMax)) + "...";
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsXmlSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsXmlSpace(s.back())) s.remove_suffix(1);
  return s;
}

// "site.cfg, phone1.cfg" -> {"site.cfg", "phone1.cfg"}; empty entries ("a,,b", "") dropped.
std::vector<std::string> SplitList(std::string_view list) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin <= list.size()) {
    size_t comma = list.find(',', begin);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view item = Trim(list.substr(begin, comma - begin));
    if (!item.empty()) out.emplace_back(item);
    begin = comma + 1;
  }
  return out;
}

// The generic attributes of the root, by the member they fill.
struct TextAttribute {
  std::string_view name;
  std::string MasterConfig::*member;
};
constexpr std::array<TextAttribute, 9> kTextAttributes = {{
    {"APP_FILE_PATH", &MasterConfig::app_file_path},
    {"DECT_FILE_PATH", &MasterConfig::dect_file_path},
    {"LOG_FILE_DIRECTORY", &MasterConfig::log_file_directory},
    {"OVERRIDES_DIRECTORY", &MasterConfig::overrides_directory},
    {"CONTACTS_DIRECTORY", &MasterConfig::contacts_directory},
    {"LICENSE_DIRECTORY", &MasterConfig::license_directory},
    {"USER_PROFILES_DIRECTORY", &MasterConfig::user_profiles_directory},
    {"CALL_LISTS_DIRECTORY", &MasterConfig::call_lists_directory},
    {"COREFILE_DIRECTORY", &MasterConfig::corefile_directory},
}};
struct ListAttribute {
  std::string_view name;
  std::vector<std::string> MasterConfig::*member;
};
constexpr std::array<ListAttribute, 2> kListAttributes = {{
    {"CONFIG_FILES", &MasterConfig::config_files},
    {"MISC_FILES", &MasterConfig::misc_files},
}};

struct Attribute {
  std::string_view name;
  std::string value;  // decoded
  size_t pos;         // of the name, for messages
};

struct StartTag {
  std::string_view name;
  size_t pos = 0;  // of the '<'
  bool self_closing = false;
  std::vector<Attribute> attributes;
};

// One pass over the document. Every loop advances pos_ or returns, and every buffer it fills is
// bounded by a limit of master_config.h, so hostile input costs at most linear time and memory.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  Result<MasterConfig> Read() {
    if (in_.size() > kMaxMasterConfigBytes) {
      return Status::InvalidArgument("master config is " + std::to_string(in_.size()) +
                                     " bytes; the limit is " +
                                     std::to_string(kMaxMasterConfigBytes));
    }
    // Windows Notepad's "Unicode" is UTF-16: say so instead of "invalid UTF-8".
    if (At("\xFF\xFE") || At("\xFE\xFF")) {
      return Error(0, "the file is UTF-16; save it as UTF-8");
    }
    if (At(kUtf8Bom)) pos_ = kUtf8Bom.size();
    size_t text_start = pos_;
    SkipSpace();
    bool ascii_only = false;
    if (AtDeclaration()) SR_RETURN_IF_ERROR(ReadDeclaration(&ascii_only));
    SR_RETURN_IF_ERROR(CheckCharacters(text_start, ascii_only));
    SR_RETURN_IF_ERROR(ReadMisc(/*after_root=*/false));
    if (Eof()) return Error(pos_, "no root element; a master config is <APPLICATION .../>");
    SR_RETURN_IF_ERROR(ReadElements());
    SR_RETURN_IF_ERROR(ReadMisc(/*after_root=*/true));
    return std::move(config_);
  }

 private:
  // Lines count LF, CR LF and a lone CR once each (XML 2.11), from 1.
  size_t LineAt(size_t pos) const {
    size_t line = 1;
    for (size_t i = 0; i < pos && i < in_.size(); ++i) {
      if (in_[i] == '\n' || (in_[i] == '\r' && (i + 1 >= in_.size() || in_[i + 1] != '\n'))) {
        ++line;
      }
    }
    return line;
  }

  Status Error(size_t pos, std::string_view what) const {
    return Status::InvalidArgument("master config line " + std::to_string(LineAt(pos)) + ": " +
                                   std::string(what));
  }

  bool Eof() const { return pos_ >= in_.size(); }
  bool At(std::string_view s) const { return in_.substr(pos_).starts_with(s); }

  // Returns whether there was any space.
  bool SkipSpace() {
    size_t start = pos_;
    while (!Eof() && IsXmlSpace(in_[pos_])) ++pos_;
    return pos_ != start;
  }

  bool AtDeclaration() const {
    return At("<?xml") && pos_ + 5 < in_.size() && IsXmlSpace(in_[pos_ + 5]);
  }

  // Every character must be an XML Char (section 2.2) in valid UTF-8 (RFC 3629: no overlong forms,
  // no surrogates, nothing past U+10FFFF), or ASCII when the declaration says ISO-8859-1.
  Status CheckCharacters(size_t from, bool ascii_only) const {
    size_t i = from;
    while (i < in_.size()) {
      auto c = static_cast<unsigned char>(in_[i]);
      if (c < 0x80) {
        if (!IsXmlChar(c)) {
          return Error(i, "control character " + HexByte(c) + " is not allowed in XML");
        }
        ++i;
        continue;
      }
      if (ascii_only) {
        return Error(i, "byte " + HexByte(c) +
                            " is not ASCII; only the ASCII part of ISO-8859-1 is supported: save "
                            "the file as UTF-8");
      }
      Utf8Char u = DecodeUtf8(in_.substr(i));
      if (u.length == 0) {
        return Error(i, "invalid UTF-8 (byte " + HexByte(c) + "); save the file as UTF-8");
      }
      uint32_t cp = u.code_point;
      size_t len = u.length;
      if (!IsXmlChar(cp)) return Error(i, "character " + CodePoint(cp) + " is not allowed in XML");
      i += len;
    }
    return Status::Ok();
  }

  // `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` (XML 2.8): only these three
  // pseudo-attributes, version first, each at most once.
  Status ReadDeclaration(bool* ascii_only) {
    size_t start = pos_;
    pos_ += 5;  // "<?xml"
    bool seen_version = false, seen_encoding = false, seen_standalone = false;
    for (;;) {
      bool space = SkipSpace();
      if (At("?>")) {
        pos_ += 2;
        break;
      }
      if (Eof()) return Error(start, "the XML declaration is never closed with \"?>\"");
      if (!space) return Error(pos_, "expected a space or \"?>\" in the XML declaration");
      size_t name_pos = pos_;
      SR_ASSIGN_OR_RETURN(std::string_view name, ReadName("in the XML declaration"));
      SkipSpace();
      if (!At("=")) return Error(pos_, "expected '=' after " + std::string(name));
      ++pos_;
      SkipSpace();
      if (Eof() || (in_[pos_] != '"' && in_[pos_] != '\'')) {
        return Error(pos_, "expected a quoted value after " + std::string(name) + "=");
      }
      char quote = in_[pos_++];
      size_t end = in_.find(quote, pos_);
      if (end == std::string_view::npos)
        return Error(name_pos, "unterminated value in the XML declaration");
      std::string_view value = in_.substr(pos_, end - pos_);
      pos_ = end + 1;
      for (char c : value) {
        if (!IsAlpha(c) && !IsDigit(c) && c != '.' && c != '_' && c != '-') {
          return Error(name_pos, "bad value " + Excerpt(value) + " in the XML declaration");
        }
      }
      if (name == "version" && !seen_version && !seen_encoding && !seen_standalone) {
        seen_version = true;
        if (value.size() < 3 || value.substr(0, 2) != "1." ||
            value.substr(2).find_first_not_of("0123456789") != std::string_view::npos) {
          return Error(name_pos, "XML version " + Excerpt(value) + " is not 1.x");
        }
      } else if (name == "encoding" && seen_version && !seen_encoding && !seen_standalone) {
        seen_encoding = true;
        if (EqualsIgnoreCase(value, "UTF-8") || EqualsIgnoreCase(value, "UTF8") ||
            EqualsIgnoreCase(value, "US-ASCII") || EqualsIgnoreCase(value, "ASCII")) {
          // Bytes are read as UTF-8, of which ASCII is a part.
        } else if (EqualsIgnoreCase(value, "ISO-8859-1") || EqualsIgnoreCase(value, "LATIN1") ||
                   EqualsIgnoreCase(value, "ISO_8859-1")) {
          *ascii_only = true;
        } else {
          return Error(name_pos,
                       "encoding " + Excerpt(value) + " is not supported; save the file as UTF-8");
        }
      } else if (name == "standalone" && seen_version && !seen_standalone) {
        seen_standalone = true;
        if (value != "yes" && value != "no") {
          return Error(name_pos, "standalone must be \"yes\" or \"no\"");
        }
      } else {
        return Error(name_pos, "unexpected " + std::string(name) + " in the XML declaration");
      }
    }
    if (!seen_version) return Error(start, "the XML declaration has no version");
    return Status::Ok();
  }

  // At "<!--". XML 2.5: "--" must not occur inside a comment.
  Status ReadComment() {
    size_t start = pos_;
    size_t dashes = in_.find("--", pos_ + 4);
    if (dashes == std::string_view::npos)
      return Error(start, "comment is never closed with \"-->\"");
    if (dashes + 2 >= in_.size() || in_[dashes + 2] != '>') {
      return Error(dashes, "\"--\" inside a comment");
    }
    pos_ = dashes + 3;
    return Status::Ok();
  }

  // Markup that is never allowed, wherever it is: DOCTYPE (no DTD, so no entity declarations or
  // external entities to expand), processing instructions, a late XML declaration.
  Status RefuseMarkup() const {
    if (At("<!DOCTYPE")) {
      return Error(pos_,
                   "DOCTYPE is not allowed (no DTD or entity declarations in a master config)");
    }
    if (AtDeclaration()) return Error(pos_, "the XML declaration must come first in the file");
    if (At("<?")) return Error(pos_, "processing instructions are not allowed");
    return Error(pos_, "unexpected markup \"<!\"");
  }

  // Comments and space before or after the root element (XML's Misc).
  Status ReadMisc(bool after_root) {
    for (;;) {
      SkipSpace();
      if (Eof()) return Status::Ok();
      if (At("<!--")) {
        SR_RETURN_IF_ERROR(ReadComment());
      } else if (At("<!") || At("<?")) {
        return RefuseMarkup();
      } else if (At("<")) {
        if (after_root) return Error(pos_, "a second root element; a master config has one");
        return Status::Ok();
      } else {
        return Error(pos_,
                     after_root ? "text after the root element" : "text before the root element");
      }
    }
  }

  Result<std::string_view> ReadName(std::string_view where) {
    if (Eof() || !IsNameStart(in_[pos_]))
      return Error(pos_, "expected a name " + std::string(where));
    size_t start = pos_;
    while (!Eof() && IsNameChar(in_[pos_])) {
      if (pos_ - start == kMaxMasterConfigNameBytes) {
        return Error(start,
                     "a name longer than " + std::to_string(kMaxMasterConfigNameBytes) + " bytes");
      }
      ++pos_;
    }
    return in_.substr(start, pos_ - start);
  }

  // At '&': a predefined entity or a character reference (XML 4.1, 4.6). Appends the character to
  // `out` unless that is null (character data, which is checked and then ignored).
  Status ReadReference(std::string* out) {
    size_t start = pos_;
    ++pos_;
    if (At("#")) {
      ++pos_;
      bool hex = At("x");
      if (hex) ++pos_;
      size_t digits_start = pos_;
      uint32_t cp = 0;
      bool too_big = false;
      while (!Eof() && (hex ? IsHex(in_[pos_]) : IsDigit(in_[pos_]))) {
        char c = in_[pos_++];
        uint32_t d = IsDigit(c) ? static_cast<uint32_t>(c - '0')
                                : static_cast<uint32_t>(AsciiLower(c) - 'a' + 10);
        if (!too_big) cp = cp * (hex ? 16u : 10u) + d;
        if (cp > 0x10ffff) too_big = true;
      }
      if (pos_ == digits_start || !At(";")) {
        return Error(start, "malformed character reference (\"&#NN;\" or \"&#xNN;\")");
      }
      ++pos_;
      if (too_big || !IsXmlChar(cp)) {
        return Error(start, "character reference to " +
                                (too_big ? std::string("beyond U+10FFFF") : CodePoint(cp)) +
                                ", which is not an XML character");
      }
      if (out != nullptr) AppendUtf8(*out, cp);
      return Status::Ok();
    }
    size_t name_start = pos_;
    while (!Eof() && IsNameChar(in_[pos_]) && pos_ - name_start <= kMaxMasterConfigNameBytes)
      ++pos_;
    std::string_view name = in_.substr(name_start, pos_ - name_start);
    if (name.empty() || !At(";")) {
      return Error(start, "'&' that starts no reference (write \"&amp;\" for '&')");
    }
    ++pos_;
    static constexpr std::array<std::pair<std::string_view, char>, 5> kEntities = {
        {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}}};
    for (const auto& [entity, c] : kEntities) {
      if (name == entity) {
        if (out != nullptr) out->push_back(c);
        return Status::Ok();
      }
    }
    return Error(start, "unknown entity &" + std::string(name) +
                            "; (only &amp; &lt; &gt; &quot; &apos; and character references)");
  }

  // At '<' followed by a name start.
  Status ReadStartTag(StartTag* tag) {
    tag->pos = pos_;
    tag->self_closing = false;
    tag->attributes.clear();
    ++pos_;
    SR_ASSIGN_OR_RETURN(tag->name, ReadName("after '<'"));
    if (++elements_ > kMaxMasterConfigElements) {
      return Error(tag->pos, "more than " + std::to_string(kMaxMasterConfigElements) + " elements");
    }
    std::string tag_text = "<" + std::string(tag->name) + ">";
    for (;;) {
      bool space = SkipSpace();
      if (Eof()) return Error(tag->pos, "tag " + tag_text + " is never closed with '>'");
      if (At("/>")) {
        pos_ += 2;
        tag->self_closing = true;
        return Status::Ok();
      }
      if (At(">")) {
        ++pos_;
        return Status::Ok();
      }
      if (!space) return Error(pos_, "expected a space, '>' or \"/>\" in " + tag_text);
      Attribute a;
      a.pos = pos_;
      SR_ASSIGN_OR_RETURN(a.name, ReadName("for an attribute in " + tag_text));
      SkipSpace();
      if (!At("=")) return Error(pos_, "attribute " + std::string(a.name) + " has no '='");
      ++pos_;
      SkipSpace();
      if (Eof() || (in_[pos_] != '"' && in_[pos_] != '\'')) {
        return Error(pos_, "attribute " + std::string(a.name) + ": expected a quoted value");
      }
      SR_RETURN_IF_ERROR(ReadValue(&a));
      if (tag->attributes.size() == kMaxMasterConfigAttributes) {
        return Error(a.pos, "more than " + std::to_string(kMaxMasterConfigAttributes) +
                                " attributes in " + tag_text);
      }
      for (const Attribute& other : tag->attributes) {
        if (EqualsIgnoreCase(other.name, a.name)) {
          return Error(a.pos, "duplicate attribute " + std::string(a.name) + " in " + tag_text +
                                  " (attribute names are compared ignoring case)");
        }
      }
      tag->attributes.push_back(std::move(a));
    }
  }

  // At the opening quote. XML 3.3.3: a literal tab, CR or LF becomes a space (CR LF one space).
  Status ReadValue(Attribute* a) {
    char quote = in_[pos_++];
    for (;;) {
      if (Eof()) return Error(a->pos, "the value of " + std::string(a->name) + " is never closed");
      char c = in_[pos_];
      if (c == quote) {
        ++pos_;
        return Status::Ok();
      }
      if (c == '<')
        return Error(pos_, "'<' in the value of " + std::string(a->name) + " (write \"&lt;\")");
      if (c == '&') {
        SR_RETURN_IF_ERROR(ReadReference(&a->value));
      } else {
        if (c == '\r' && pos_ + 1 < in_.size() && in_[pos_ + 1] == '\n') ++pos_;
        a->value.push_back(IsXmlSpace(c) ? ' ' : c);
        ++pos_;
      }
      if (a->value.size() > kMaxMasterConfigValueBytes) {
        return Error(a->pos, "the value of " + std::string(a->name) + " is longer than " +
                                 std::to_string(kMaxMasterConfigValueBytes) + " bytes");
      }
    }
  }

  // Character data up to the next '<': ignored, but its references must be well formed and "]]>"
  // may not occur (XML 2.4).
  Status SkipText() {
    while (!Eof() && in_[pos_] != '<') {
      if (in_[pos_] == '&') {
        SR_RETURN_IF_ERROR(ReadReference(nullptr));
      } else if (At("]]>")) {
        return Error(pos_, "\"]]>\" in text");
      } else {
        ++pos_;
      }
    }
    return Status::Ok();
  }

  struct Open {
    std::string_view name;
    size_t pos;
  };

  // The root element and everything inside it, without recursion: the stack of open elements is
  // bounded by kMaxMasterConfigDepth.
  Status ReadElements() {
    std::vector<Open> open;
    StartTag tag;
    for (;;) {
      if (At("</")) {
        if (open.empty()) return Error(pos_, "end tag without a start tag");
        size_t end_pos = pos_;
        pos_ += 2;
        SR_ASSIGN_OR_RETURN(std::string_view name, ReadName("after \"</\""));
        SkipSpace();
        if (!At(">"))
          return Error(end_pos, "end tag </" + std::string(name) + " is never closed with '>'");
        ++pos_;
        if (name != open.back().name) {
          return Error(end_pos, "end tag </" + std::string(name) + "> does not match <" +
                                    std::string(open.back().name) + "> from line " +
                                    std::to_string(LineAt(open.back().pos)));
        }
        open.pop_back();
      } else if (At("<!--")) {
        SR_RETURN_IF_ERROR(ReadComment());
      } else if (At("<![CDATA[")) {
        // Character data like any other, so skipped; only legal inside an element, which is where
        // this loop is.
        size_t end = in_.find("]]>", pos_);
        if (end == std::string_view::npos) return Error(pos_, "CDATA section is never closed");
        pos_ = end + 3;
      } else if (At("<!") || At("<?")) {
        return RefuseMarkup();
      } else {  // ReadMisc and SkipText leave pos_ at '<'
        if (open.size() == kMaxMasterConfigDepth) {
          return Error(pos_,
                       "elements nested deeper than " + std::to_string(kMaxMasterConfigDepth));
        }
        SR_RETURN_IF_ERROR(ReadStartTag(&tag));
        SR_RETURN_IF_ERROR(OnElement(tag, open.size() + 1));
        if (!tag.self_closing) open.push_back({tag.name, tag.pos});
      }
      if (open.empty()) return Status::Ok();
      SR_RETURN_IF_ERROR(SkipText());
      if (Eof()) {
        return Error(open.back().pos, "<" + std::string(open.back().name) + "> is never closed");
      }
    }
  }

  Status OnElement(const StartTag& tag, size_t depth) {
    if (depth == 1) {
      if (tag.name != kRootName) {
        return Error(tag.pos, "not a master config: the root element is <" + std::string(tag.name) +
                                  ">, not <APPLICATION>");
      }
      for (const Attribute& a : tag.attributes) SR_RETURN_IF_ERROR(OnRootAttribute(a));
      return Status::Ok();
    }
    // Only the root's APPLICATION_<key> children count; anything else is not Poly's and ignored.
    if (depth != 2 || !tag.name.starts_with(kModelElementPrefix) ||
        tag.name.size() == kModelElementPrefix.size()) {
      return Status::Ok();
    }
    std::string_view key = tag.name.substr(kModelElementPrefix.size());
    for (const Attribute& a : tag.attributes) {
      SR_RETURN_IF_ERROR(OnModelAttribute(a, key));
    }
    return Status::Ok();
  }

  Status OnRootAttribute(const Attribute& a) {
    for (const TextAttribute& t : kTextAttributes) {
      if (EqualsIgnoreCase(a.name, t.name)) {
        config_.*t.member = std::string(Trim(a.value));
        return Status::Ok();
      }
    }
    for (const ListAttribute& l : kListAttributes) {
      if (EqualsIgnoreCase(a.name, l.name)) {
        config_.*l.member = SplitList(a.value);
        return Status::Ok();
      }
    }
    return OnModelAttribute(a, {});
  }

  // APP_FILE_PATH_<key> or CONFIG_FILES_<key>; on a child, only for the child's own key.
  Status OnModelAttribute(const Attribute& a, std::string_view element_key) {
    bool image = StartsWithIgnoreCase(a.name, kModelImagePrefix);
    bool files = StartsWithIgnoreCase(a.name, kModelConfigFilesPrefix);
    if (!image && !files) return Status::Ok();
    std::string_view key =
        a.name.substr(image ? kModelImagePrefix.size() : kModelConfigFilesPrefix.size());
    if (key.empty()) return Status::Ok();
    if (!element_key.empty() && !EqualsIgnoreCase(key, element_key)) return Status::Ok();
    size_t index = 0;
    while (index < config_.models.size() && !EqualsIgnoreCase(config_.models[index].key, key)) {
      ++index;
    }
    if (index == config_.models.size()) {
      config_.models.push_back(ModelOverride{std::string(key), {}, {}});
      given_.push_back({std::string_view::npos, std::string_view::npos});
    }
    size_t& given_at = given_[index][image ? 0 : 1];
    if (given_at != std::string_view::npos) {
      return Error(a.pos, std::string(a.name) + " is given twice (also on line " +
                              std::to_string(LineAt(given_at)) + ")");
    }
    given_at = a.pos;
    ModelOverride& m = config_.models[index];
    if (image) {
      m.app_file_path = std::string(Trim(a.value));
    } else {
      m.config_files = SplitList(a.value);
    }
    return Status::Ok();
  }

  std::string_view in_;
  size_t pos_ = 0;
  size_t elements_ = 0;
  MasterConfig config_;
  // Per entry of config_.models: where its APP_FILE_PATH_ and CONFIG_FILES_ attribute was given.
  std::vector<std::array<size_t, 2>> given_;
};

bool ValidMac(std::string_view mac) {
  if (mac.size() != 12) return false;
  for (char c : mac) {
    if (!IsHex(c)) return false;
  }
  return true;
}

// A model key or part number goes into a path: letters, digits and '-' only, so it can add no
// '/', no "..", nothing to escape.
bool ValidFact(std::string_view s) {
  if (s.empty() || s.size() > kMaxFactBytes) return false;
  for (char c : s) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '-') return false;
  }
  return true;
}

// The first dotted version in `s`: a maximal run of digit groups joined by single dots, of 3 or
// 4 groups; longer or shorter runs are skipped whole ("1.2.3.4.5" is not "1.2.3.4").
std::optional<std::string> FirstVersion(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (!IsDigit(s[i])) {
      ++i;
      continue;
    }
    size_t start = i;
    size_t groups = 0;
    bool too_long = false;
    for (;;) {
      size_t group_start = i;
      while (i < s.size() && IsDigit(s[i])) ++i;
      if (i - group_start > kMaxVersionRunDigits) too_long = true;
      ++groups;
      if (i + 1 < s.size() && s[i] == '.' && IsDigit(s[i + 1])) {
        ++i;
        continue;
      }
      break;
    }
    if (!too_long && (groups == 3 || groups == 4)) return std::string(s.substr(start, i - start));
  }
  return std::nullopt;
}

}  // namespace

Result<MasterConfig> ParseMasterConfig(std::string_view xml) { return Reader(xml).Read(); }

std::string ModelKey(std::string_view ua_model) {
  std::string key;
  for (char c : ua_model) {
    if (c != '_') key.push_back(c);
  }
  return key;
}

const ModelOverride* FindModelOverride(const MasterConfig& config, std::string_view model_key) {
  if (model_key.empty()) return nullptr;
  for (const ModelOverride& m : config.models) {
    if (EqualsIgnoreCase(m.key, model_key)) return &m;
  }
  return nullptr;
}

std::optional<std::string> SubstituteTokens(std::string_view value, const PhoneFacts& facts) {
  static constexpr std::string_view kMac = "[PHONE_MAC_ADDRESS]";
  static constexpr std::string_view kModel = "[PHONE_MODEL]";
  static constexpr std::string_view kPart = "[PHONE_PART_NUMBER]";
  std::string out;
  size_t i = 0;
  while (i < value.size()) {
    std::string_view rest = value.substr(i);
    if (rest.starts_with(kMac)) {
      if (!ValidMac(facts.mac)) return std::nullopt;
      out += AsciiToLower(facts.mac);
      i += kMac.size();
    } else if (rest.starts_with(kModel)) {
      std::string key = ModelKey(facts.model);
      if (!ValidFact(key)) return std::nullopt;
      out += key;
      i += kModel.size();
    } else if (rest.starts_with(kPart)) {
      if (!ValidFact(facts.part_number)) return std::nullopt;
      out += facts.part_number;
      i += kPart.size();
    } else {
      out.push_back(value[i++]);
    }
  }
  return out;
}

std::string ImageFor(const MasterConfig& config, const PhoneFacts& facts) {
  const ModelOverride* m = FindModelOverride(config, ModelKey(facts.model));
  const std::string& path =
      m != nullptr && !m->app_file_path.empty() ? m->app_file_path : config.app_file_path;
  if (path.empty()) return {};
  return SubstituteTokens(path, facts).value_or(std::string());
}

std::string SplitImageName(std::string_view image_path, std::string_view part_number) {
  if (image_path.empty() || part_number.empty()) return {};
  size_t slash = image_path.rfind('/');
  size_t base_start = slash == std::string_view::npos ? 0 : slash + 1;
  std::string_view dir = image_path.substr(0, base_start);
  std::string_view base = image_path.substr(base_start);
  if (base.empty()) return {};
  std::string prefix = std::string(part_number) + ".";
  if (StartsWithIgnoreCase(base, prefix)) return std::string(image_path);
  return std::string(dir) + prefix + std::string(base);
}

std::string SplitImageFor(const MasterConfig& config, const PhoneFacts& facts) {
  if (!ValidFact(facts.part_number)) return {};
  return SplitImageName(ImageFor(config, facts), facts.part_number);
}

std::vector<std::string> ConfigFilesFor(const MasterConfig& config, const PhoneFacts& facts) {
  const ModelOverride* m = FindModelOverride(config, ModelKey(facts.model));
  const std::vector<std::string>& list =
      m != nullptr && !m->config_files.empty() ? m->config_files : config.config_files;
  std::vector<std::string> out;
  for (const std::string& entry : list) {
    std::optional<std::string> file = SubstituteTokens(entry, facts);
    if (file.has_value() && !file->empty()) out.push_back(std::move(*file));
  }
  return out;
}

std::vector<std::string> PhoneFilesFor(const MasterConfig& config, const PhoneFacts& facts) {
  std::vector<std::string> out = ConfigFilesFor(config, facts);
  std::optional<std::string> mac = SubstituteTokens("[PHONE_MAC_ADDRESS]", facts);
  if (!mac) return out;
  auto in = [&](const std::string& dir, std::string_view name) {
    std::string path = dir;
    if (!path.empty() && path.back() != '/') path += '/';
    out.push_back(path.append(name));
  };
  in(config.overrides_directory, *mac + "-phone.cfg");
  in(config.overrides_directory, *mac + "-web.cfg");
  in(config.license_directory, "000000000000-license.cfg");
  in(config.license_directory, *mac + "-license.cfg");
  in(config.call_lists_directory, *mac + "-calls.xml");
  in(config.contacts_directory, *mac + "-directory.xml");
  in(config.contacts_directory, "000000000000-directory.xml");
  return out;
}

std::vector<std::vector<std::string>> SiteFilesFor(const MasterConfig& config,
                                                   const std::vector<PhoneFacts>& phones) {
  std::vector<std::vector<std::string>> out;
  auto add = [&](std::vector<std::string> names) {
    std::erase(names, std::string());
    if (names.empty() || std::find(out.begin(), out.end(), names) != out.end()) return;
    out.push_back(std::move(names));
  };
  std::vector<PhoneFacts> kinds = phones;
  if (kinds.empty()) kinds.emplace_back();
  for (const PhoneFacts& p : kinds) {
    PhoneFacts no_mac = p;
    no_mac.mac.clear();
    std::string image = ImageFor(config, no_mac);
    std::string split = SplitImageName(image, no_mac.part_number);
    if (!split.empty() && split != image) {
      add({split, image});
    } else {
      add({image});
    }
    for (std::string& f : ConfigFilesFor(config, no_mac)) add({std::move(f)});
  }
  for (const std::string& f : config.misc_files) add({f});
  return out;
}

bool IsUrl(std::string_view value) {
  // RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
  size_t colon = value.find("://");
  if (colon == std::string_view::npos || colon == 0 || !IsAlpha(value[0])) return false;
  for (char c : value.substr(0, colon)) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

std::optional<std::string> VersionInPath(std::string_view image_path) {
  std::string_view path = image_path;
  if (IsUrl(path)) {  // skip "scheme://user:pass@host:port/", and the query
    path.remove_prefix(path.find("://") + 3);
    size_t slash = path.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    path.remove_prefix(slash + 1);
    path = path.substr(0, path.find_first_of("?#"));
  }
  size_t end = path.size();
  for (;;) {  // the file name first, then each directory from the nearest
    size_t slash = end == 0 ? std::string_view::npos : path.rfind('/', end - 1);
    size_t begin = slash == std::string_view::npos ? 0 : slash + 1;
    if (auto v = FirstVersion(path.substr(begin, end - begin))) return v;
    if (slash == std::string_view::npos) return std::nullopt;
    end = slash;
  }
}

std::optional<std::string> ParseVersionFile(std::string_view contents) {
  if (contents.starts_with(kUtf8Bom)) contents.remove_prefix(kUtf8Bom.size());
  while (!contents.empty()) {
    size_t newline = contents.find('\n');
    std::string_view line = Trim(contents.substr(0, newline));
    if (!line.empty()) return FirstVersion(line);
    if (newline == std::string_view::npos) break;
    contents.remove_prefix(newline + 1);
  }
  return std::nullopt;
}

}  // namespace siterelay::files
