package policy_test

// Importing the packages that register policies outside package policy puts
// them in this test binary's registry, so TestInvariantsEveryPolicy drives
// them through the fake engine too.
import _ "github.com/namm-dev/namm/namm"
