// The policy SDK's types, re-exported for the unit tests, which live outside policy/ and so
// cannot resolve @pulumi/policy (installed in policy/node_modules only). Types only: nothing
// here exists at run time.
export type {
  Policies,
  Policy,
  PolicyResource,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";
