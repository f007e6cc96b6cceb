// The proxy's DNS-01 permission (issue 16): exactly the _acme-challenge TXT record of each
// database's hostname, in the one public zone, nothing else.
import { acmeChallengeName, acmeDnsStatements } from "../../components/reverse-proxy";

describe("acmeDnsStatements", () => {
  it("allows the challenge record of every hostname the certificate carries, and only those", () => {
    const [write] = acmeDnsStatements("aws", "Z04417412S8KQ3PL1", ["erp.example.com", "Shop.Example.com."]);
    expect(write.Resource).toBe("arn:aws:route53:::hostedzone/Z04417412S8KQ3PL1");
    expect(write.Condition).toEqual({
      "ForAllValues:StringEquals": {
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.erp.example.com", "_acme-challenge.shop.example.com"],
        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
        "route53:ChangeResourceRecordSetsActions": ["UPSERT", "DELETE"],
      },
    });
  });

  it("keeps one database's statement as it was: one name", () => {
    const [write] = acmeDnsStatements("aws", "Z04417412S8KQ3PL1", ["erp.example.com"]);
    expect(
      (write.Condition as Record<string, Record<string, string[]>>)["ForAllValues:StringEquals"][
        "route53:ChangeResourceRecordSetsNormalizedRecordNames"
      ],
    ).toEqual([acmeChallengeName("erp.example.com")]);
  });
});
