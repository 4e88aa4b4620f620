#include "admin/grpc_health.h"

namespace grelay {
namespace {

// The protobuf wire types this decoder meets.
constexpr uint8_t wire_varint = 0;
constexpr uint8_t wire_fixed64 = 1;
constexpr uint8_t wire_length = 2;
constexpr uint8_t wire_fixed32 = 5;

bool read_varint(std::string_view in, size_t& pos, uint64_t& value) noexcept {
  value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= in.size()) return false;
    auto byte = static_cast<uint8_t>(in[pos++]);
    value |= uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

ServingStatus health_of(std::string_view service, ServingStatus process) noexcept {
  if (service.empty() || service == "grelay") return process;
  if (service == "liveness") return ServingStatus::serving;
  return ServingStatus::service_unknown;
}

bool take_single_grpc_message(std::string_view body, std::string_view& message) noexcept {
  if (body.size() < 5 || body[0] != 0) return false;
  uint32_t length = (uint32_t{static_cast<uint8_t>(body[1])} << 24) |
                    (uint32_t{static_cast<uint8_t>(body[2])} << 16) |
                    (uint32_t{static_cast<uint8_t>(body[3])} << 8) |
                    uint32_t{static_cast<uint8_t>(body[4])};
  if (body.size() - 5 != length) return false;
  message = body.substr(5);
  return true;
}

bool parse_health_check_request(std::string_view message, std::string& service) {
  service.clear();
  size_t pos = 0;
  while (pos < message.size()) {
    uint64_t key = 0;
    if (!read_varint(message, pos, key)) return false;
    uint64_t field = key >> 3;
    auto wire = static_cast<uint8_t>(key & 7);
    uint64_t value = 0;
    switch (wire) {
      case wire_varint:
        if (!read_varint(message, pos, value)) return false;
        break;
      case wire_fixed64:
      case wire_fixed32: {
        size_t size = wire == wire_fixed64 ? 8 : 4;
        if (message.size() - pos < size) return false;
        pos += size;
        break;
      }
      case wire_length:
        if (!read_varint(message, pos, value) || value > message.size() - pos) return false;
        // The last occurrence of a string field wins, as protobuf parsers do.
        if (field == 1) service.assign(message.substr(pos, value));
        pos += value;
        break;
      default:
        return false;
    }
  }
  return true;
}

std::string health_check_response_frame(ServingStatus status) {
  // Field 1, varint; SERVING..SERVICE_UNKNOWN fit in one byte. UNKNOWN (0) is the default
  // value, which protobuf leaves out: an empty message.
  std::string message;
  if (status != ServingStatus::unknown) {
    message = {static_cast<char>(1 << 3 | wire_varint), static_cast<char>(status)};
  }
  std::string frame(5, '\0');
  frame[4] = static_cast<char>(message.size());
  return frame + message;
}

}  // namespace grelay
