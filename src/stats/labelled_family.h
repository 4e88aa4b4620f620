#pragma once

#include <array>
#include <cstddef>

namespace grelay {

// A metric family declared on its own rather than in a GRELAY_*_STATS list: its samples are
// told apart by labels of its own (an enum's names, a result). admin/metrics.cc writes its
// HELP and TYPE lines and its samples from this declaration.
template <size_t N>
struct LabelledFamily {
  const char* name;
  const char* prometheus_type;
  const char* help;
  std::array<const char*, N> labels;
};

}  // namespace grelay
