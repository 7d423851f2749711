// Content-Type by file extension, as CONTRACT.md lists it for phones. Pure; any thread.
#pragma once

#include <cstddef>
#include <string_view>

namespace siterelay {

// `.cfg`/`.xml` application/xml, `.ld`/`.bin` application/octet-stream, `.ver`/`.log`/`.txt`
// text/plain, and application/octet-stream for anything else: IIS's 404 on unknown extensions is
// a known phone-provisioning failure (PHONES.md), so every file is served with some type.
std::string_view ContentTypeForPath(std::string_view path);

// What the console counts bytes by (issue: WAN bytes vs bytes served per content class):
// firmware images (.ld, .bin), configuration (.cfg, .xml) and everything else.
enum class ContentClass { kFirmware = 0, kConfig = 1, kOther = 2 };
inline constexpr size_t kContentClasses = 3;
ContentClass ContentClassOf(std::string_view path);
std::string_view ContentClassName(ContentClass c);  // "firmware", "config", "other"

}  // namespace siterelay
