#pragma once

// match_listeners() is public (grelay/listen.h): the relay, its workers and a host keeping its
// own sockets match listeners through that one function, so they never disagree.
#include "grelay/listen.h"
