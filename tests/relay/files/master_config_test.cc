#include "relay/files/master_config.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace siterelay::files {
namespace {

using Files = std::vector<std::string>;

// The example of the task and of PHONES.md, as Poly ships it (declaration, comment, children).
constexpr std::string_view kPolyDefault = R"(<?xml version="1.0" standalone="yes"?>
<!-- Default Master SIP Configuration File-->
<APPLICATION APP_FILE_PATH="sip.ld" DECT_FILE_PATH="" CONFIG_FILES="site.cfg, phone1.cfg" MISC_FILES="" LOG_FILE_DIRECTORY="logs" OVERRIDES_DIRECTORY="overrides" CONTACTS_DIRECTORY="contacts" LICENSE_DIRECTORY="" USER_PROFILES_DIRECTORY="" CALL_LISTS_DIRECTORY="" COREFILE_DIRECTORY="">
  <APPLICATION_SPIP300 APP_FILE_PATH_SPIP300="sip_213.ld" CONFIG_FILES_SPIP300="phone1_213.cfg, sip_213.cfg"/>
  <APPLICATION_VVX500 APP_FILE_PATH_VVX500="[PHONE_MODEL]/sip.ld" CONFIG_FILES_VVX500="[PHONE_MAC_ADDRESS]-extra.cfg"/>
</APPLICATION>
)";

const PhoneFacts kVvx500{"0004F282E824", "VVX_500", "3111-44500-001"};
const PhoneFacts kVvx410{"0004f2aabbcc", "VVX_410", "3111-46162-001"};

MasterConfig Parse(std::string_view xml) {
  auto r = ParseMasterConfig(xml);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : MasterConfig{};
}

// The message of the InvalidArgument that `xml` must give ("" and a test failure if it parses).
std::string ErrorOf(std::string_view xml) {
  auto r = ParseMasterConfig(xml);
  if (r.ok()) {
    ADD_FAILURE() << "parsed: " << xml.substr(0, 200);
    return "";
  }
  EXPECT_TRUE(r.status().Is(StatusCode::kInvalidArgument)) << r.status().ToString();
  return r.status().message();
}

#define EXPECT_ERROR(xml, needle)                                                 \
  do {                                                                            \
    std::string message = ErrorOf(xml);                                           \
    EXPECT_NE(message.find(needle), std::string::npos) << "message: " << message; \
  } while (0)

TEST(MasterConfigTest, ReadsPolysDefaultFile) {
  MasterConfig c = Parse(kPolyDefault);
  EXPECT_EQ(c.app_file_path, "sip.ld");
  EXPECT_EQ(c.dect_file_path, "");
  EXPECT_EQ(c.config_files, (Files{"site.cfg", "phone1.cfg"}));
  EXPECT_EQ(c.misc_files, Files{});
  EXPECT_EQ(c.log_file_directory, "logs");
  EXPECT_EQ(c.overrides_directory, "overrides");
  EXPECT_EQ(c.contacts_directory, "contacts");
  EXPECT_EQ(c.license_directory, "");
  ASSERT_EQ(c.models.size(), 2u);
  EXPECT_EQ(c.models[0].key, "SPIP300");
  EXPECT_EQ(c.models[0].app_file_path, "sip_213.ld");
  EXPECT_EQ(c.models[0].config_files, (Files{"phone1_213.cfg", "sip_213.cfg"}));
  EXPECT_EQ(c.models[1].key, "VVX500");
  EXPECT_EQ(c.models[1].app_file_path, "[PHONE_MODEL]/sip.ld");
}

TEST(MasterConfigTest, ReadsEveryDirectoryAttribute) {
  MasterConfig c = Parse(
      "<APPLICATION DECT_FILE_PATH='dect.bin' MISC_FILES='a.wav,b.wav' LOG_FILE_DIRECTORY='l' "
      "OVERRIDES_DIRECTORY='o' CONTACTS_DIRECTORY='c' LICENSE_DIRECTORY='li' "
      "USER_PROFILES_DIRECTORY='u' CALL_LISTS_DIRECTORY='cl' COREFILE_DIRECTORY='core'/>");
  EXPECT_EQ(c.dect_file_path, "dect.bin");
  EXPECT_EQ(c.misc_files, (Files{"a.wav", "b.wav"}));
  EXPECT_EQ(c.log_file_directory, "l");
  EXPECT_EQ(c.overrides_directory, "o");
  EXPECT_EQ(c.contacts_directory, "c");
  EXPECT_EQ(c.license_directory, "li");
  EXPECT_EQ(c.user_profiles_directory, "u");
  EXPECT_EQ(c.call_lists_directory, "cl");
  EXPECT_EQ(c.corefile_directory, "core");
  EXPECT_EQ(c.app_file_path, "");
}

TEST(MasterConfigTest, SplitsAndTrimsListsDroppingEmptyEntries) {
  MasterConfig c = Parse(
      "<APPLICATION CONFIG_FILES=' a.cfg ,,b.cfg,\tc.cfg , ' MISC_FILES=' , '"
      " APP_FILE_PATH='  sip.ld  '/>");
  EXPECT_EQ(c.config_files, (Files{"a.cfg", "b.cfg", "c.cfg"}));
  EXPECT_EQ(c.misc_files, Files{});
  EXPECT_EQ(c.app_file_path, "sip.ld");
}

TEST(MasterConfigTest, AttributeNamesMatchIgnoringCaseTagNamesExactly) {
  MasterConfig c = Parse(
      "<APPLICATION app_file_path='sip.ld'><APPLICATION_SSDuo "
      "App_File_Path_ssduo='duo.ld'/></APPLICATION>");
  EXPECT_EQ(c.app_file_path, "sip.ld");
  ASSERT_EQ(c.models.size(), 1u);
  EXPECT_EQ(c.models[0].key, "ssduo");  // as the attribute writes it
  EXPECT_EQ(ImageFor(c, {"", "SSDuo", ""}), "duo.ld");
  EXPECT_ERROR("<application APP_FILE_PATH='sip.ld'/>", "not a master config");
  // A child whose tag is not exactly APPLICATION_<key> is not Poly's and is ignored.
  MasterConfig ignored =
      Parse("<APPLICATION><application_VVX500 APP_FILE_PATH_VVX500='x.ld'/></APPLICATION>");
  EXPECT_TRUE(ignored.models.empty());
}

TEST(MasterConfigTest, IgnoresUnknownAttributesElementsAndText) {
  MasterConfig c = Parse(
      "<APPLICATION APP_FILE_PATH='sip.ld' FUTURE='1'>some text &amp; more"
      "<OTHER APP_FILE_PATH_VVX500='nested.ld'><APPLICATION_VVX500 APP_FILE_PATH_VVX500='deep.ld'/>"
      "</OTHER><![CDATA[ <not markup> & ]]></APPLICATION>");
  EXPECT_EQ(c.app_file_path, "sip.ld");
  EXPECT_TRUE(c.models.empty());  // only the root's own APPLICATION_ children count
}

TEST(MasterConfigTest, PerModelOverridesOnChildrenAndOnTheRoot) {
  MasterConfig c = Parse(
      "<APPLICATION APP_FILE_PATH='sip.ld' CONFIG_FILES='site.cfg' APP_FILE_PATH_VVX410='410.ld'>"
      "<APPLICATION_VVX500 APP_FILE_PATH_VVX500='500.ld' CONFIG_FILES_VVX500='500.cfg'/>"
      "<APPLICATION_VVX410 CONFIG_FILES_VVX410='410.cfg'/>"
      "</APPLICATION>");
  EXPECT_EQ(ImageFor(c, kVvx500), "500.ld");
  EXPECT_EQ(ConfigFilesFor(c, kVvx500), Files{"500.cfg"});
  EXPECT_EQ(ImageFor(c, kVvx410), "410.ld");
  EXPECT_EQ(ConfigFilesFor(c, kVvx410), Files{"410.cfg"});
  PhoneFacts other{"0004f2000001", "SPIP_550", ""};
  EXPECT_EQ(ImageFor(c, other), "sip.ld");
  EXPECT_EQ(ConfigFilesFor(c, other), Files{"site.cfg"});
  PhoneFacts unknown_model{"0004f2000001", "", ""};
  EXPECT_EQ(ImageFor(c, unknown_model), "sip.ld");
  ASSERT_NE(FindModelOverride(c, "vvx500"), nullptr);
  EXPECT_EQ(FindModelOverride(c, "VVX600"), nullptr);
}

TEST(MasterConfigTest, PhoneFilesAreTheConfigFilesThenThePerPhoneFilesInTheirDirectories) {
  MasterConfig c = Parse(kPolyDefault);
  PhoneFacts vvx410 = kVvx410;
  EXPECT_EQ(PhoneFilesFor(c, vvx410),
            (Files{"site.cfg", "phone1.cfg", "overrides/0004f2aabbcc-phone.cfg",
                   "overrides/0004f2aabbcc-web.cfg", "000000000000-license.cfg",
                   "0004f2aabbcc-license.cfg", "0004f2aabbcc-calls.xml",
                   "contacts/0004f2aabbcc-directory.xml", "contacts/000000000000-directory.xml"}));
  // The model's own CONFIG_FILES, with the MAC in lower case; a directory given with its slash.
  c.license_directory = "lic/";
  Files vvx500 = PhoneFilesFor(c, kVvx500);
  ASSERT_EQ(vvx500.size(), 8u);
  EXPECT_EQ(vvx500[0], "0004f282e824-extra.cfg");
  EXPECT_EQ(vvx500[3], "lic/000000000000-license.cfg");
  // Without a MAC only the shared config files are known.
  PhoneFacts no_mac{"", "VVX_410", ""};
  EXPECT_EQ(PhoneFilesFor(c, no_mac), (Files{"site.cfg", "phone1.cfg"}));
}

TEST(MasterConfigTest, SiteFilesAreEachPhoneKindsImageAndConfigFilesThenMiscFiles) {
  MasterConfig c = Parse(kPolyDefault);
  c.misc_files = {"tones.wav"};
  PhoneFacts vvx410{"", "VVX_410", "3111-46162-001"};
  PhoneFacts vvx500{"", "VVX_500", "3111-44500-001"};
  PhoneFacts vvx410_again{"0004f2000001", "VVX_410", "3111-46162-001"};
  PhoneFacts unknown_part{"", "VVX_410", ""};
  std::vector<Files> want = {
      {"3111-46162-001.sip.ld", "sip.ld"}, {"site.cfg"}, {"phone1.cfg"},
      // The VVX500's own image, in its model's directory; its config file needs a MAC.
      {"VVX500/3111-44500-001.sip.ld", "VVX500/sip.ld"},
      {"tones.wav"}};
  EXPECT_EQ(SiteFilesFor(c, {vvx410, vvx500, vvx410_again}), want);
  // A phone whose part number is not known yet asks for the name as written.
  EXPECT_EQ(SiteFilesFor(c, {unknown_part})[0], Files{"sip.ld"});
  // No phones known: what a phone of unknown model reads.
  EXPECT_EQ(SiteFilesFor(c, {}),
            (std::vector<Files>{{"sip.ld"}, {"site.cfg"}, {"phone1.cfg"}, {"tones.wav"}}));
}

TEST(MasterConfigTest, AnEmptyOverrideLeavesTheGenericValue) {
  // Poly's own template writes CONFIG_FILES_SPIP320="" next to a real APP_FILE_PATH_SPIP320.
  MasterConfig c = Parse(
      "<APPLICATION APP_FILE_PATH='sip.ld' CONFIG_FILES='site.cfg'>"
      "<APPLICATION_SPIP320 APP_FILE_PATH_SPIP320='sip_335.ld' CONFIG_FILES_SPIP320=''/>"
      "<APPLICATION_VVX500 APP_FILE_PATH_VVX500=' ' CONFIG_FILES_VVX500=' , '/>"
      "</APPLICATION>");
  PhoneFacts spip{"0004f2000001", "SPIP_320", ""};
  EXPECT_EQ(ImageFor(c, spip), "sip_335.ld");
  EXPECT_EQ(ConfigFilesFor(c, spip), Files{"site.cfg"});
  EXPECT_EQ(ImageFor(c, kVvx500), "sip.ld");
  EXPECT_EQ(ConfigFilesFor(c, kVvx500), Files{"site.cfg"});
}

TEST(MasterConfigTest, IgnoresAnotherModelsAttributeOnAChild) {
  MasterConfig c = Parse(
      "<APPLICATION APP_FILE_PATH='sip.ld'>"
      "<APPLICATION_VVX500 APP_FILE_PATH_VVX600='600.ld'/></APPLICATION>");
  EXPECT_TRUE(c.models.empty());
  EXPECT_EQ(ImageFor(c, {"", "VVX_600", ""}), "sip.ld");
}

TEST(MasterConfigTest, RefusesAnOverrideGivenTwice) {
  EXPECT_ERROR(
      "<APPLICATION APP_FILE_PATH_VVX500='a.ld'>\n"
      "<APPLICATION_vvx500 APP_FILE_PATH_VVX500='b.ld'/></APPLICATION>",
      "line 2: APP_FILE_PATH_VVX500 is given twice (also on line 1)");
  EXPECT_ERROR(
      "<APPLICATION><APPLICATION_VVX500 CONFIG_FILES_VVX500='a'/>"
      "<APPLICATION_VVX500 CONFIG_FILES_VVX500='b'/></APPLICATION>",
      "given twice");
  // One attribute each in two children is not a duplicate.
  MasterConfig c = Parse(
      "<APPLICATION><APPLICATION_VVX500 APP_FILE_PATH_VVX500='a.ld'/>"
      "<APPLICATION_VVX500 CONFIG_FILES_VVX500='a.cfg'/></APPLICATION>");
  ASSERT_EQ(c.models.size(), 1u);
  EXPECT_EQ(c.models[0].app_file_path, "a.ld");
  EXPECT_EQ(c.models[0].config_files, Files{"a.cfg"});
}

TEST(MasterConfigTest, SubstitutesTokensForOnePhone) {
  MasterConfig c = Parse(kPolyDefault);
  EXPECT_EQ(ImageFor(c, kVvx500), "VVX500/sip.ld");
  // The MAC goes in lower case: that is how phones name their files (PHONES.md).
  EXPECT_EQ(ConfigFilesFor(c, kVvx500), Files{"0004f282e824-extra.cfg"});
  EXPECT_EQ(
      SubstituteTokens("fw/[PHONE_PART_NUMBER]/[PHONE_MODEL]-[PHONE_MAC_ADDRESS].cfg", kVvx500),
      "fw/3111-44500-001/VVX500-0004f282e824.cfg");
  // Only the exact upper-case tokens; anything else in brackets stays as written.
  EXPECT_EQ(SubstituteTokens("[phone_model]-[OTHER]-[PHONE_MODEL", kVvx500),
            "[phone_model]-[OTHER]-[PHONE_MODEL");
  EXPECT_EQ(SubstituteTokens("", kVvx500), "");
}

TEST(MasterConfigTest, AValueNeedingAnUnknownFactIsLeftOut) {
  MasterConfig c = Parse(
      "<APPLICATION APP_FILE_PATH='[PHONE_PART_NUMBER]/sip.ld' "
      "CONFIG_FILES='site.cfg, [PHONE_MAC_ADDRESS].cfg, [PHONE_MODEL].cfg'/>");
  PhoneFacts nothing;
  EXPECT_EQ(ImageFor(c, nothing), "");
  EXPECT_EQ(ConfigFilesFor(c, nothing), Files{"site.cfg"});
  EXPECT_EQ(SubstituteTokens("[PHONE_MAC_ADDRESS].cfg", nothing), std::nullopt);
  // Facts that could change the path's shape count as unknown: no '/', "..", or '.' gets in.
  PhoneFacts hostile{"../../etc/pa", "../VVX", "a/b"};
  EXPECT_EQ(SubstituteTokens("[PHONE_MAC_ADDRESS]", hostile), std::nullopt);
  EXPECT_EQ(SubstituteTokens("[PHONE_MODEL]", hostile), std::nullopt);
  EXPECT_EQ(SubstituteTokens("[PHONE_PART_NUMBER]", hostile), std::nullopt);
  EXPECT_EQ(SubstituteTokens("[PHONE_PART_NUMBER]", {"", "", "3111.44500"}), std::nullopt);
  EXPECT_EQ(SubstituteTokens("[PHONE_PART_NUMBER]", {"", "", std::string(33, '1')}), std::nullopt);
  EXPECT_EQ(SubstituteTokens("[PHONE_PART_NUMBER]", {"", "", std::string(32, '1')}),
            std::string(32, '1'));
  EXPECT_EQ(SubstituteTokens("[PHONE_MAC_ADDRESS]", {"0004f282e82", "", ""}), std::nullopt);
  EXPECT_EQ(SubstituteTokens("[PHONE_MAC_ADDRESS]", {"0004f282e82g", "", ""}), std::nullopt);
}

TEST(MasterConfigTest, ValuesAreReturnedUnnormalisedForTheCaller) {
  // Normalising (and refusing escapes) is NormalizePath's job; URLs are the phone's own fetches.
  MasterConfig c = Parse(
      "<APPLICATION APP_FILE_PATH='../fw/sip.ld' "
      "CONFIG_FILES='http://usr:pwd@server/dir/site.cfg, /abs.cfg'/>");
  EXPECT_EQ(ImageFor(c, kVvx500), "../fw/sip.ld");
  EXPECT_EQ(ConfigFilesFor(c, kVvx500), (Files{"http://usr:pwd@server/dir/site.cfg", "/abs.cfg"}));
  EXPECT_TRUE(IsUrl("http://usr:pwd@server/dir/sip.ld"));
  EXPECT_TRUE(IsUrl("ftps://h/x"));
  EXPECT_FALSE(IsUrl("fw/sip.ld"));
  EXPECT_FALSE(IsUrl("://x"));
  EXPECT_FALSE(IsUrl("1http://x"));
  EXPECT_FALSE(IsUrl("fw/http://x"));
}

TEST(MasterConfigTest, DecodesEntitiesAndCharacterReferences) {
  MasterConfig c = Parse(
      "<APPLICATION APP_FILE_PATH='a&amp;b&lt;&gt;&quot;&apos;.ld' "
      "CONFIG_FILES=\"&#65;&#x42;&#x1F600;.cfg, caf&#xE9;.cfg, &#0000067;.cfg\"/>");
  EXPECT_EQ(c.app_file_path, "a&b<>\"'.ld");
  EXPECT_EQ(c.config_files, (Files{"AB\xF0\x9F\x98\x80.cfg", "caf\xC3\xA9.cfg", "C.cfg"}));
}

TEST(MasterConfigTest, NormalisesLiteralWhitespaceInValues) {
  // XML 3.3.3: a literal tab, LF or CR LF is one space; a character reference to one is kept.
  MasterConfig c = Parse("<APPLICATION CONFIG_FILES='a.cfg,\r\n\tb c.cfg' MISC_FILES='x&#9;y'/>");
  EXPECT_EQ(c.config_files, (Files{"a.cfg", "b c.cfg"}));
  EXPECT_EQ(c.misc_files, Files{"x\ty"});
}

TEST(MasterConfigTest, AcceptsBomCommentsDeclarationAndSingleQuotes) {
  MasterConfig c = Parse(
      "\xEF\xBB\xBF<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\r\n"
      "<!-- first --><!---->\n<APPLICATION APP_FILE_PATH = 'sip.ld' ><!-- inside -->\n"
      "<APPLICATION_VVX500\n APP_FILE_PATH_VVX500=\"v'500.ld\"></APPLICATION_VVX500 >"
      "</APPLICATION>\n<!-- after -->\n");
  EXPECT_EQ(c.app_file_path, "sip.ld");
  EXPECT_EQ(ImageFor(c, kVvx500), "v'500.ld");
  // Looser than XML: space before the declaration (editors leave a blank line).
  EXPECT_EQ(Parse("\n<?xml version=\"1.0\"?><APPLICATION/>").app_file_path, "");
  // An ISO-8859-1 file is fine while it is ASCII.
  EXPECT_EQ(Parse("<?xml version='1.0' encoding='ISO-8859-1'?><APPLICATION APP_FILE_PATH='s.ld'/>")
                .app_file_path,
            "s.ld");
}

TEST(MasterConfigTest, RefusesDoctype) {
  EXPECT_ERROR(
      "<?xml version='1.0'?>\n<!DOCTYPE APPLICATION [<!ENTITY x 'sip.ld'>]>\n"
      "<APPLICATION APP_FILE_PATH='&x;'/>",
      "line 2: DOCTYPE is not allowed");
  EXPECT_ERROR("<APPLICATION>\n<!DOCTYPE x></APPLICATION>", "line 2: DOCTYPE");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='&x;'/>", "unknown entity &x;");
}

TEST(MasterConfigTest, RefusesProcessingInstructionsAndALateDeclaration) {
  EXPECT_ERROR("<?xml-stylesheet href='a'?><APPLICATION/>", "processing instructions");
  EXPECT_ERROR("<APPLICATION><?php x ?></APPLICATION>", "processing instructions");
  EXPECT_ERROR("<!-- c -->\n<?xml version='1.0'?><APPLICATION/>",
               "line 2: the XML declaration must come first");
  EXPECT_ERROR("<?xml encoding='UTF-8'?><APPLICATION/>", "unexpected encoding");
  EXPECT_ERROR("<?xml version='2.0'?><APPLICATION/>", "not 1.x");
  EXPECT_ERROR("<?xml version='1.0' encoding='UTF-16'?><APPLICATION/>", "save the file as UTF-8");
  EXPECT_ERROR("<?xml version='1.0'", "never closed");
}

TEST(MasterConfigTest, ErrorMessagesStayOneShortLine) {
  std::string message =
      ErrorOf("<?xml version='1.0' encoding='" + std::string(5000, 'X') + "\n'?><APPLICATION/>");
  EXPECT_LT(message.size(), 200u) << message;
  EXPECT_NE(message.find("XXX\"..."), std::string::npos) << message;
}

TEST(MasterConfigTest, RefusesAnUnclosedTag) {
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='sip.ld'>\n<APPLICATION_VVX500/>\n",
               "line 1: <APPLICATION> is never closed");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='sip.ld'", "line 1: tag <APPLICATION> is never closed");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='sip.ld/>", "value of APP_FILE_PATH is never closed");
  EXPECT_ERROR("<APPLICATION></APPLICATION", "never closed with '>'");
  EXPECT_ERROR("<APPLICATION><!-- x </APPLICATION>", "comment is never closed");
  EXPECT_ERROR("<APPLICATION><![CDATA[ x </APPLICATION>", "CDATA section is never closed");
}

TEST(MasterConfigTest, RefusesAMismatchedEndTag) {
  EXPECT_ERROR("<APPLICATION>\n<APPLICATION_VVX500>\n</APPLICATION>\n</APPLICATION_VVX500>",
               "line 3: end tag </APPLICATION> does not match <APPLICATION_VVX500> from line 2");
  EXPECT_ERROR("<APPLICATION></application>", "does not match");
  EXPECT_ERROR("</APPLICATION>", "end tag without a start tag");
}

TEST(MasterConfigTest, RefusesADuplicateAttribute) {
  EXPECT_ERROR("<APPLICATION\nAPP_FILE_PATH='a.ld'\nAPP_FILE_PATH='b.ld'/>",
               "line 3: duplicate attribute APP_FILE_PATH");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='a.ld' app_file_path='b.ld'/>",
               "duplicate attribute app_file_path");
}

TEST(MasterConfigTest, RefusesMalformedMarkup) {
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='a'CONFIG_FILES='b'/>", "expected a space");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH/>", "has no '='");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH=sip.ld/>", "expected a quoted value");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='a<b'/>", "'<' in the value");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='a & b'/>", "'&' that starts no reference");
  EXPECT_ERROR("<APPLICATION>a & b</APPLICATION>", "'&' that starts no reference");
  EXPECT_ERROR("<APPLICATION>]]></APPLICATION>", "\"]]>\" in text");
  EXPECT_ERROR("<APPLICATION><!-- a -- b --></APPLICATION>", "\"--\" inside a comment");
  EXPECT_ERROR("<APPLICATION>< APPLICATION_VVX500/></APPLICATION>", "expected a name");
  EXPECT_ERROR("<APPLICATION/><APPLICATION/>", "a second root element");
  EXPECT_ERROR("<APPLICATION/>junk", "text after the root element");
  EXPECT_ERROR("junk<APPLICATION/>", "text before the root element");
  EXPECT_ERROR("", "no root element");
  EXPECT_ERROR("<!-- only a comment -->", "no root element");
}

TEST(MasterConfigTest, RefusesBadCharacterReferences) {
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='&#0;'/>", "U+0000, which is not an XML character");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='&#xD800;'/>", "U+D800");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='&#xFFFE;'/>", "U+FFFE");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='&#x110000;'/>", "beyond U+10FFFF");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='&#99999999999999999999;'/>", "beyond U+10FFFF");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='&#x;'/>", "malformed character reference");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='&#12'/>", "malformed character reference");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='&#x41G;'/>", "malformed character reference");
  EXPECT_ERROR("<APPLICATION>&#1;</APPLICATION>", "U+0001");
  EXPECT_EQ(Parse("<APPLICATION APP_FILE_PATH='&#x10FFFF;'/>").app_file_path, "\xF4\x8F\xBF\xBF");
}

TEST(MasterConfigTest, RefusesBytesThatAreNotXmlText) {
  EXPECT_ERROR(std::string_view("<APPLICATION APP_FILE_PATH='a\0b'/>", 34),
               "control character 0x00");
  EXPECT_ERROR("<APPLICATION>\n\x01</APPLICATION>", "line 2: control character 0x01");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='\xC0\xAE'/>", "invalid UTF-8");
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='\xED\xA0\x80'/>", "invalid UTF-8");  // a surrogate
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='\xEF\xBF\xBE'/>", "U+FFFE");  // UTF-8, not XML
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='\xE9'/>", "invalid UTF-8");
  EXPECT_ERROR("\xFF\xFE<\0A\0", "UTF-16");
  EXPECT_ERROR("<?xml version='1.0' encoding='ISO-8859-1'?><APPLICATION APP_FILE_PATH='caf\xE9'/>",
               "only the ASCII part of ISO-8859-1");
}

TEST(MasterConfigTest, RefusesAWrongRoot) {
  EXPECT_ERROR("<?xml version='1.0'?>\n<polycomConfig device.set='1'/>",
               "line 2: not a master config: the root element is <polycomConfig>");
}

TEST(MasterConfigTest, DepthLimit) {
  auto nested = [](size_t depth) {
    std::string xml;
    for (size_t i = 0; i < depth; ++i) xml += i == 0 ? "<APPLICATION>" : "<e>";
    for (size_t i = depth; i-- > 0;) xml += i == 0 ? "</APPLICATION>" : "</e>";
    return xml;
  };
  Parse(nested(kMaxMasterConfigDepth - 1));
  Parse(nested(kMaxMasterConfigDepth));
  EXPECT_ERROR(nested(kMaxMasterConfigDepth + 1), "nested deeper than 8");
}

TEST(MasterConfigTest, SizeLimit) {
  auto padded = [](size_t size) {
    std::string xml = "<APPLICATION APP_FILE_PATH='sip.ld'/>";
    xml += std::string(size - xml.size(), '\n');
    return xml;
  };
  EXPECT_EQ(Parse(padded(kMaxMasterConfigBytes - 1)).app_file_path, "sip.ld");
  EXPECT_EQ(Parse(padded(kMaxMasterConfigBytes)).app_file_path, "sip.ld");
  EXPECT_ERROR(padded(kMaxMasterConfigBytes + 1), "1048577 bytes; the limit is 1048576");
}

TEST(MasterConfigTest, ElementLimit) {
  auto elements = [](size_t count) {  // the root and count-1 children
    std::string xml = "<APPLICATION>";
    for (size_t i = 1; i < count; ++i) xml += "<x/>";
    return xml + "</APPLICATION>";
  };
  Parse(elements(kMaxMasterConfigElements - 1));
  Parse(elements(kMaxMasterConfigElements));
  EXPECT_ERROR(elements(kMaxMasterConfigElements + 1), "more than 1024 elements");
}

TEST(MasterConfigTest, AttributeCountLimit) {
  auto attributes = [](size_t count) {
    std::string xml = "<APPLICATION";
    for (size_t i = 0; i < count; ++i) xml += " a" + std::to_string(i) + "=''";
    return xml + "/>";
  };
  Parse(attributes(kMaxMasterConfigAttributes - 1));
  Parse(attributes(kMaxMasterConfigAttributes));
  EXPECT_ERROR(attributes(kMaxMasterConfigAttributes + 1), "more than 64 attributes");
}

TEST(MasterConfigTest, ValueLengthLimitCountsDecodedBytes) {
  auto value = [](size_t size) {
    return "<APPLICATION APP_FILE_PATH='" + std::string(size, 'a') + "'/>";
  };
  EXPECT_EQ(Parse(value(kMaxMasterConfigValueBytes - 1)).app_file_path.size(),
            kMaxMasterConfigValueBytes - 1);
  EXPECT_EQ(Parse(value(kMaxMasterConfigValueBytes)).app_file_path.size(),
            kMaxMasterConfigValueBytes);
  EXPECT_ERROR(value(kMaxMasterConfigValueBytes + 1), "longer than 4096 bytes");
  // 4095 bytes and one 4-byte character: over.
  EXPECT_ERROR("<APPLICATION APP_FILE_PATH='" + std::string(4095, 'a') + "&#x1F600;'/>",
               "longer than 4096 bytes");
}

TEST(MasterConfigTest, NameLengthLimit) {
  auto named = [](size_t size) { return "<APPLICATION " + std::string(size, 'N') + "=''/>"; };
  Parse(named(kMaxMasterConfigNameBytes - 1));
  Parse(named(kMaxMasterConfigNameBytes));
  EXPECT_ERROR(named(kMaxMasterConfigNameBytes + 1), "a name longer than 128 bytes");
}

TEST(MasterConfigTest, SplitImageNameGoesNextToTheImage) {
  // PHONES.md: the firmware a VVX 500 requests is "3111-44500-001.sip.ld".
  MasterConfig c = Parse("<APPLICATION APP_FILE_PATH='sip.ld'/>");
  EXPECT_EQ(SplitImageFor(c, kVvx500), "3111-44500-001.sip.ld");
  EXPECT_EQ(SplitImageName("firmware/5.9.7.47435/sip.ld", "3111-44500-001"),
            "firmware/5.9.7.47435/3111-44500-001.sip.ld");
  EXPECT_EQ(SplitImageName("http://u:p@h/fw/sip.ld", "3111-44500-001"),
            "http://u:p@h/fw/3111-44500-001.sip.ld");
  // Already split (tools write per-model paths that way): not prefixed twice.
  EXPECT_EQ(SplitImageName("fw/3111-44500-001.sip.ld", "3111-44500-001"),
            "fw/3111-44500-001.sip.ld");
  EXPECT_EQ(SplitImageName("fw/", "3111-44500-001"), "");
  EXPECT_EQ(SplitImageName("", "3111-44500-001"), "");
  EXPECT_EQ(SplitImageName("sip.ld", ""), "");
  EXPECT_EQ(SplitImageFor(c, {"0004f282e824", "VVX_500", ""}), "");
  EXPECT_EQ(SplitImageFor(c, {"0004f282e824", "VVX_500", "../x"}), "");
  EXPECT_EQ(SplitImageFor(MasterConfig{}, kVvx500), "");
}

TEST(MasterConfigTest, ModelKeyDropsUnderscores) {
  EXPECT_EQ(ModelKey("VVX_500"), "VVX500");
  EXPECT_EQ(ModelKey("SPIP_550"), "SPIP550");
  EXPECT_EQ(ModelKey("Edge_E450"), "EdgeE450");
  EXPECT_EQ(ModelKey("SSIP_7000"), "SSIP7000");
  EXPECT_EQ(ModelKey("VVX500"), "VVX500");
  EXPECT_EQ(ModelKey(""), "");
  MasterConfig c =
      Parse("<APPLICATION><APPLICATION_EDGEE450 APP_FILE_PATH_EDGEE450='e.ld'/></APPLICATION>");
  EXPECT_EQ(ImageFor(c, {"", "Edge_E450", ""}), "e.ld");
}

TEST(MasterConfigTest, VersionInPath) {
  EXPECT_EQ(VersionInPath("firmware/5.9.7.47435/sip.ld"), "5.9.7.47435");
  EXPECT_EQ(VersionInPath("sip-6.4.2.ld"), "6.4.2");
  EXPECT_EQ(VersionInPath("fw/4.0.15.1009/3111-40000-001.sip.ld"), "4.0.15.1009");
  EXPECT_EQ(VersionInPath("5.9.6/6.4.2/sip_7.0.1.ld"), "7.0.1");  // the file name first
  EXPECT_EQ(VersionInPath("5.9.6/6.4.2/sip.ld"), "6.4.2");        // then the nearest directory
  EXPECT_EQ(VersionInPath("http://10.1.2.3/fw/sip.ld"), std::nullopt);  // a host is no version
  EXPECT_EQ(VersionInPath("http://10.1.2.3/fw/5.9.7/sip.ld?v=1.2.3"), "5.9.7");
  EXPECT_EQ(VersionInPath("sip.ld"), std::nullopt);
  EXPECT_EQ(VersionInPath("3111-44500-001.sip.ld"), std::nullopt);
  EXPECT_EQ(VersionInPath("fw/5.9/sip.ld"), std::nullopt);
  EXPECT_EQ(VersionInPath("fw/1.2.3.4.5/sip.ld"), std::nullopt);  // five runs: not a version
  EXPECT_EQ(VersionInPath("fw/12345678901.2.3/sip.ld"), std::nullopt);
  EXPECT_EQ(VersionInPath("fw/1234567890.2.3/sip.ld"), "1234567890.2.3");
  EXPECT_EQ(VersionInPath(""), std::nullopt);
  EXPECT_EQ(VersionInPath("/"), std::nullopt);
}

TEST(MasterConfigTest, ParseVersionFile) {
  EXPECT_EQ(ParseVersionFile("5.9.7.47435\n"), "5.9.7.47435");
  EXPECT_EQ(ParseVersionFile("\xEF\xBB\xBF\r\n  \n\t4.0.15.1047 built 2019-01-01\r\nxx 9.9.9\n"),
            "4.0.15.1047");
  EXPECT_EQ(ParseVersionFile("UC Software 6.4.2.1234"), "6.4.2.1234");
  EXPECT_EQ(ParseVersionFile("no version here\n5.9.7\n"), std::nullopt);  // first line only
  EXPECT_EQ(ParseVersionFile(""), std::nullopt);
  EXPECT_EQ(ParseVersionFile("\n\n"), std::nullopt);
  EXPECT_EQ(ParseVersionFile("5.9"), std::nullopt);
}

}  // namespace
}  // namespace siterelay::files
