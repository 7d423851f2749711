#include "sync/manifest.h"

#include <gtest/gtest.h>

namespace siterelay::sync {
namespace {

const std::string kSha(64, 'a');

TEST(ManifestTest, ParsesFilesInOrderAndIgnoresUnknownMembers) {
  auto m = ParseManifest(R"({"version": 7, "files": [
      {"path": "fw/sip.ld", "size": 123, "sha256": ")" + kSha + R"(", "note": "x"},
      {"path": "000000000000.cfg", "size": 0, "sha256": ")" + std::string(64, 'F') + R"("}]})");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->files.size(), 2u);
  EXPECT_EQ(m->files[0].path, "fw/sip.ld");
  EXPECT_EQ(m->files[0].size, 123u);
  EXPECT_EQ(m->files[0].sha256.Hex(), kSha);
  EXPECT_EQ(m->files[1].sha256.Hex(), std::string(64, 'f'));
  EXPECT_EQ(m->total_bytes, 123u);
}

struct Bad {
  const char* name;
  std::string json;
  const char* says;
};

class ManifestRefusesTest : public ::testing::TestWithParam<Bad> {};

TEST_P(ManifestRefusesTest, WithTheFirstProblemNamed) {
  auto m = ParseManifest(GetParam().json);
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(m.status().Is(StatusCode::kInvalidArgument));
  EXPECT_NE(m.status().message().find(GetParam().says), std::string::npos)
      << m.status().message();
}

std::string One(const std::string& file) { return R"({"files": [)" + file + "]}"; }
std::string File(const std::string& path, const std::string& size = "1",
                 const std::string& sha = "\"" + kSha + "\"") {
  return R"({"path": )" + path + R"(, "size": )" + size + R"(, "sha256": )" + sha + "}";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ManifestRefusesTest,
    ::testing::Values(
        Bad{"NotJson", "{\"files\": [", "not valid JSON"},
        Bad{"NotObject", "[]", "not a JSON object"},
        Bad{"NoFiles", "{}", "files: missing"},
        Bad{"FileNotObject", One("7"), "files[0]: not an object"},
        Bad{"NoPath", One(R"({"size": 1, "sha256": ")" + kSha + "\"}"), "files[0].path"},
        Bad{"NegativeSize", One(File("\"a\"", "-1")), "files[0].size"},
        Bad{"FractionalSize", One(File("\"a\"", "1.5")), "files[0].size"},
        Bad{"ShortSha", One(File("\"a\"", "1", "\"abc\"")), "not 64 hex digits"},
        Bad{"NonHexSha", One(File("\"a\"", "1", "\"" + std::string(64, 'g') + "\"")),
            "not 64 hex digits"},
        Bad{"DotDot", One(File("\"fw/../../etc/passwd\"")), "'..' segment"},
        Bad{"Absolute", One(File("\"/etc/passwd\"")), "absolute"},
        Bad{"EmptySegment", One(File("\"fw//a\"")), "empty"},
        Bad{"Backslash", One(File("\"fw\\\\a\"")), "backslash"},
        Bad{"ControlChar", One(File("\"a\\u0000b\"")), "control character"},
        Bad{"Empty", One(File("\"\"")), "empty"},
        Bad{"Twice", R"({"files": [)" + File("\"a\"") + "," + File("\"a\"") + "]}",
            "listed twice"},
        Bad{"SizesOverflow",
            R"({"files": [)" + File("\"a\"", "18446744073709551615") + "," +
                File("\"b\"", "1") + "]}",
            "past 2^64"}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(ManifestTest, RefusesOverlongPathAndDocument) {
  std::string path(kMaxManifestPathBytes + 1, 'a');
  EXPECT_FALSE(ParseManifest(One(File("\"" + path + "\""))).ok());
  EXPECT_TRUE(ParseManifest(One(File("\"" + path.substr(1) + "\""))).ok());
  std::string big(kMaxManifestBytes + 1, ' ');
  EXPECT_FALSE(ParseManifest(big).ok());
}

}  // namespace
}  // namespace siterelay::sync
