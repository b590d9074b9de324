// Canonical serialization, digests and JSON parsing for the manifest object model.
#include "common/manifest/manifest.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>

namespace driftless::manifest {

std::string SourceLocation::ToString() const {
  std::string out = file.empty() ? "<input>" : file;
  out += " (document " + std::to_string(document);
  if (line > 0) out += ", line " + std::to_string(line);
  out += ")";
  return out;
}

absl::StatusOr<Json> ParseJson(std::string_view text, std::string_view file) {
  Json value = Json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    // Re-parse with exceptions only on the error path to get the byte offset for the message.
    try {
      Json ignored = Json::parse(text.begin(), text.end());
      (void)ignored;
    } catch (const Json::parse_error& e) {
      return absl::InvalidArgumentError(std::string(file) + ": invalid JSON at byte " +
                                        std::to_string(e.byte) + ": " + e.what());
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(std::string(file) + ": invalid JSON: " + e.what());
    }
    return absl::InvalidArgumentError(std::string(file) + ": invalid JSON");
  }
  return value;
}

std::string CanonicalJson(const Json& value) {
  // nlohmann::json keeps object keys in a std::map, so dump() is already key-sorted.
  return value.dump(-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

namespace {

std::string Hex(const unsigned char* bytes, unsigned int len) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(static_cast<size_t>(len) * 2, '0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 0xF];
  }
  return out;
}

}  // namespace

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  return Hex(digest, len);
}

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return Hex(mac, len);
}

std::string Digest(const Json& value) { return "sha256:" + Sha256Hex(CanonicalJson(value)); }

std::string ToYamlStream(const std::vector<Json>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += "---\n";
    out += ToYaml(values[i]);
  }
  return out;
}

}  // namespace driftless::manifest
