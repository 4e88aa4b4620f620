#pragma once

#include "grelay/config.h"

namespace grelay {

// True when |a| and |b| would build the same cluster: every setting is equal, wherever in the
// file each was written (|line| is not compared). A reload keeps the backend connections of a
// cluster whose settings did not change.
//
// The public config structs keep no operator== of their own: include/grelay/ builds as
// C++17, where it cannot be defaulted, and only a reload compares configs.
bool same_settings(const ClusterConfig& a, const ClusterConfig& b);

}  // namespace grelay
