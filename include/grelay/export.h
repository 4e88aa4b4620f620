#pragma once

// GRELAY_API marks what libgrelay exports: the library is built with hidden visibility, so
// only the classes and functions of the public headers carrying it are visible to a program
// linked against the shared library. Static and subproject builds see it as nothing more than
// default visibility.
#if defined(__GNUC__)
#define GRELAY_API __attribute__((visibility("default")))
#else
#define GRELAY_API
#endif
